#!/usr/bin/python3
"""make_cifar.py DIR [PER_FILE] [TEST]: a small CIFAR-10 in the official
binary format (cifar-10-batches-bin: data_batch_1..5.bin, test_batch.bin;
each record a label byte then 3072 pixel bytes, the red, green and blue
32x32 planes), with images a model can learn: each class has its own
colour and a bright band at its own height, under noise."""
import os
import sys

import numpy as np


def batch(rng, n):
    labels = rng.integers(0, 10, n).astype(np.uint8)
    img = rng.normal(110, 25, (n, 3, 32, 32))
    hue = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200],
                    [200, 200, 60], [200, 60, 200], [60, 200, 200],
                    [150, 100, 50], [50, 100, 150], [100, 150, 50],
                    [180, 180, 180]], dtype=np.float64)
    for i, c in enumerate(labels):
        img[i] += (hue[c] - 128)[:, None, None] * 0.6
        row = 3 * c
        img[i, :, row:row + 3, :] += 70
    img = np.clip(img, 0, 255).astype(np.uint8).reshape(n, 3072)
    return np.concatenate([labels[:, None], img], axis=1).tobytes()


def main():
    out = os.path.join(sys.argv[1], "cifar-10-batches-bin")
    per_file = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    test = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(10)
    for i in range(1, 6):
        with open(os.path.join(out, "data_batch_%d.bin" % i), "wb") as f:
            f.write(batch(rng, per_file))
    with open(os.path.join(out, "test_batch.bin"), "wb") as f:
        f.write(batch(rng, test))


if __name__ == "__main__":
    main()
