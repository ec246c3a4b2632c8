"""nvflare.client over cohort: init, is_running, receive, send,
get_site_name, get_job_id, is_train, is_evaluate, is_submit_model,
system_info, FLModel, ParamsType.

A task arrives as an FLModel whose params are the global model by name
(torch tensors when torch is loaded, as NVFlare's PyTorch exchange gives
them; numpy arrays otherwise), current_round cohort's round (0-based, as
NVFlare counts); total_rounds is None. send(FLModel) reports
it: a fit's params (every tensor, by name; torch tensors or arrays) with
meta["NUM_STEPS_CURRENT_ROUND"] as the examples FedAvg weighs it by (1
without); an evaluation's metrics only (params sent anyway are dropped).
"""
import os

import cohort
from nvflare.app_common.abstract.fl_model import FLModel, ParamsType

__all__ = ["init", "is_running", "receive", "send", "get_site_name",
           "get_job_id", "is_train", "is_evaluate", "is_submit_model",
           "system_info", "FLModel", "ParamsType"]

_task = None


def init(rank=None, config_file=None):
    cohort.init()


def is_running():
    return cohort.running()


def _torch():
    import sys
    return sys.modules.get("torch")


def receive(timeout=None):
    global _task
    _task = cohort.receive()
    if _task is None:
        return None
    if _task.kind == "init":
        raise RuntimeError("the NVFlare adapter has no initial model to "
                           "give: set model.init (model.name custom)")
    params = dict(_task.params)
    if _torch() is not None:
        import cohort.torch as ct
        params = ct.state_dict_from(params)
    return FLModel(params_type=ParamsType.FULL, params=params,
                   current_round=_task.round - 1,
                   meta={"cohort_task": _task.kind})


def _as_numpy(params):
    out = {}
    for name, v in params.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        out[name] = v
    return out


def send(model, clear_cache=True):
    if _task is None:
        raise RuntimeError("flare.send() before flare.receive()")
    metrics = {k: float(v) for k, v in (model.metrics or {}).items()}
    if _task.kind == "fit":
        if model.params_type == ParamsType.DIFF:
            raise ValueError("params_type DIFF: cohort takes the full "
                             "weights (ParamsType.FULL)")
        n = int((model.meta or {}).get("NUM_STEPS_CURRENT_ROUND", 1))
        cohort.send(_as_numpy(model.params), num_examples=n,
                    metrics=metrics)
    else:
        if "loss" not in metrics or "accuracy" not in metrics:
            raise ValueError(
                "an evaluation reports metrics loss and accuracy (cohort "
                "averages both over the evaluated examples); this one has "
                "%s. Add them to FLModel.metrics, or set "
                "evaluate.central=false" % sorted(metrics))
        cohort.send(num_examples=int(metrics.pop("num_examples", 1)),
                    metrics=metrics)


def get_site_name():
    """site-1, site-2, ... (NVFlare's names) for cohort's clients 0, 1, ...;
    "server" for the central evaluation."""
    c = _task.client_id if _task is not None else \
        int(os.environ.get("COHORT_CLIENT_ID", "-1"))
    return "server" if c < 0 else "site-%d" % (c + 1)


def get_job_id():
    return os.environ.get("COHORT_JOB", "")


def is_train():
    return _task is not None and _task.kind == "fit"


def is_evaluate():
    return _task is not None and _task.kind == "evaluate"


def is_submit_model():
    return False


def system_info():
    return {"site_name": get_site_name(), "job_id": get_job_id()}
