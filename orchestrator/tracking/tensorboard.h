/* tensorboard.h: TensorBoard event files (TFRecord framing, hand-encoded
 * Event protobufs) holding scalar summaries. */
#ifndef COHORT_TENSORBOARD_H
#define COHORT_TENSORBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct tensorboard;

/* Create dir (if needed) and a new dir/events.out.tfevents.<time>.<host>
 * starting with the file_version event. */
struct tensorboard *tensorboard_open(const char *dir, struct ipc_error *err);
/* Append one scalar (wall_time in seconds since the epoch). */
int tensorboard_scalar(struct tensorboard *tb, const char *tag, int64_t step,
                       float value, double wall_time);
/* Flush written events to the file. */
void tensorboard_flush(struct tensorboard *tb);
/* Path of the event file. */
const char *tensorboard_path(const struct tensorboard *tb);
void tensorboard_close(struct tensorboard *tb);

/* CRC-32C (Castagnoli) of data, as TFRecord uses it. */
uint32_t tensorboard_crc32c(const void *data, size_t len);
/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t tensorboard_masked_crc(uint32_t crc);

#endif
