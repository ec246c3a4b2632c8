"""cohort.torch: the global model as a PyTorch state_dict and a module's
weights as an update, matched by tensor name.

    import cohort.torch as ct
    net.load_state_dict(ct.state_dict_from(task.params))
    ...train...
    cohort.send(ct.params_from(net), num_examples=n, metrics=...)

Needs Debian's python3-torch.
"""
import warnings

import torch

import cohort


def state_dict_from(params):
    """name -> torch tensor over the same memory as task.params (no copy).
    The memory is the read-only global model: load it into a module
    (load_state_dict copies it) and never write to these tensors."""
    with warnings.catch_warnings():
        # torch warns that the arrays are not writable: they are not meant
        # to be written.
        warnings.simplefilter("ignore", UserWarning)
        return {name: torch.from_numpy(a) for name, a in params.items()}


def params_from(module):
    """A module's state_dict as name -> numpy array, for cohort.send: a
    view, no copy, of every CPU tensor whose dtype numpy has (bfloat16 is
    sent as float32)."""
    out = {}
    for name, t in module.state_dict().items():
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        out[name] = t.numpy()
    return out


def save(module, path):
    """Write a module's state_dict (params_from) as a safetensors file:
    model.init of a job whose model.name is custom, so cohort's global
    model has exactly this module's tensors and starts from its weights."""
    cohort.save_safetensors(path, params_from(module))
