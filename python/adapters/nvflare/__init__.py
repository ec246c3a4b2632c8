"""A stand-in for NVFlare's Client API, for scripts written for NVFlare
(`import nvflare.client as flare`) to run unchanged as cohort workers. It is
on a job's PYTHONPATH only with worker.adapter=nvflare (docs/python.md,
"NVFlare scripts"). It is not NVFlare: only the calls a Client API training
script makes."""
