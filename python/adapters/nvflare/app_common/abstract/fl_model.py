"""FLModel and ParamsType as NVFlare's Client API scripts use them."""


class ParamsType:
    FULL = "FULL"
    DIFF = "DIFF"


class FLModel:
    """What flare.receive() returns and flare.send() takes: params (name ->
    tensor or array), metrics, current_round, total_rounds, meta."""

    def __init__(self, params_type=None, params=None, optimizer_params=None,
                 metrics=None, start_round=0, current_round=None,
                 total_rounds=None, meta=None):
        self.params_type = params_type
        self.params = params
        self.optimizer_params = optimizer_params
        self.metrics = metrics
        self.start_round = start_round
        self.current_round = current_round
        self.total_rounds = total_rounds
        self.meta = {} if meta is None else meta
