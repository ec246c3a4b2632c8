"""nvflare.client.tracking.SummaryWriter over cohort: add_scalar and
add_scalars become cohort.log metrics of the task in hand (metrics.jsonl's
step_TAG, TensorBoard and MLflow like the built-in worker's)."""
import cohort


class SummaryWriter:
    def add_scalar(self, tag, scalar, global_step=None, **kwargs):
        cohort.log(tag, float(scalar), step=int(global_step or 0))

    def add_scalars(self, tag, scalars, global_step=None, **kwargs):
        for k, v in scalars.items():
            self.add_scalar("%s_%s" % (tag, k), v, global_step)

    def flush(self):
        pass
