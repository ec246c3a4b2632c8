/* test_config.c: job configuration: defaults, files, --set, every error
 * shape, and the resolved config written to a workspace read back. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "gpt2shape.h"
#include "harness.h"

/* Write text to a fresh file in the test's temp dir; returns its path. */
static const char *
write_json(const char *name, const char *text)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", harness_tmpdir(), name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_defaults(void)
{
	struct config c;
	config_defaults(&c);
	CHECK_EQ_INT(c.federation.clients, 2);
	CHECK_EQ_INT(c.federation.rounds, 3);
	CHECK_EQ_INT(c.job.seed, 1);
	CHECK(strcmp(c.model.name, "mlp") == 0);
	CHECK(strcmp(c.data.dataset, "fashion-mnist") == 0);
	CHECK(strcmp(c.strategy.weighting, "examples") == 0);
	CHECK(c.evaluate.central);
	CHECK_NEAR(c.train.lr, 0.01, 1e-12);
	CHECK_EQ_INT(c.launcher.tasks_per_worker, 1);
	CHECK_EQ_INT(config_min_fit(&c), 2);
	struct ipc_error err;
	CHECK_EQ_INT(config_check(&c, &err), 0);
	config_free(&c);
}

static void
test_file_and_set(void)
{
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	const char *p = write_json(
	    "ok.json", "{\"federation\": {\"clients\": 10, "
	               "\"fit_clients\": 4, \"min_clients\": 3},"
	               " \"train\": {\"lr\": 0.05, \"optimizer\": "
	               "\"adam\"}, \"evaluate\": {\"central\": false}}");
	CHECK_EQ_INT(config_load_file(&c, p, &err), 0);
	CHECK_EQ_INT(c.federation.clients, 10);
	CHECK_NEAR(c.train.lr, 0.05, 1e-12);
	CHECK(strcmp(c.train.optimizer, "adam") == 0);
	CHECK(!c.evaluate.central);
	CHECK_EQ_INT(config_min_fit(&c), 3);
	CHECK_EQ_INT(config_set(&c, "federation.rounds=7", &err), 0);
	CHECK_EQ_INT(config_set(&c, "train.momentum=0.5", &err), 0);
	CHECK_EQ_INT(config_set(&c, "model.name=cnn", &err), 0);
	CHECK_EQ_INT(config_set(&c, "evaluate.central=true", &err), 0);
	CHECK_EQ_INT(config_set(&c, "launcher.worker=/bin/x=y", &err), 0);
	CHECK_EQ_INT(c.federation.rounds, 7);
	CHECK_NEAR(c.train.momentum, 0.5, 1e-12);
	CHECK(strcmp(c.model.name, "cnn") == 0);
	CHECK(c.evaluate.central);
	CHECK(strcmp(c.launcher.worker, "/bin/x=y") == 0);
	config_free(&c);
}

/* Load text as a config file and check the error message contains want. */
static void
expect_file_error(const char *text, const char *want)
{
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	const char *p = write_json("bad.json", text);
	CHECK_EQ_INT(config_load_file(&c, p, &err), -1);
	CHECK_STR_CONTAINS(err.message, p);
	CHECK_STR_CONTAINS(err.message, want);
	config_free(&c);
}

static void
test_file_errors(void)
{
	expect_file_error("{\"federation\": {\"rounds\": \"three\"}}",
	                  ": federation.rounds: expected a positive integer, "
	                  "got \"three\"");
	expect_file_error("{\"federation\": {\"rounds\": 0}}",
	                  "federation.rounds: expected a positive integer, "
	                  "got 0");
	expect_file_error("{\"federation\": {\"round\": 3}}",
	                  "federation.round: unknown key");
	expect_file_error("{\"modle\": {\"name\": \"mlp\"}}",
	                  "modle.name: unknown key");
	expect_file_error("{\"model\": {\"name\": \"resnet\"}}",
	                  "model.name: expected one of \"mlp\", \"cnn\", "
	                  "\"gpt2\", \"synthetic\", \"custom\", got "
	                  "\"resnet\"");
	expect_file_error("{\"federation\": {\"availability\": 1.5}}",
	                  "federation.availability: expected a number in [0, "
	                  "1], got 1.5");
	expect_file_error("{\"evaluate\": {\"central\": 1}}",
	                  "evaluate.central: expected true or false, got 1");
	expect_file_error("{\"federation\": 3}",
	                  "federation: expected an object");
	expect_file_error("[1]", "expected a JSON object");
	expect_file_error("{\"federation\": {",
	                  ": invalid JSON at line 1, column 16: string or "
	                  "'}' expected near end of file");
	expect_file_error("{\n  \"job\": {\"seed\": 1, \"seed\": 2}}\n",
	                  ": invalid JSON at line 2, column 27: duplicate "
	                  "object key near '\"seed\"'");
}

/* Apply an override and check the error message contains want. */
static void
expect_set_error(const char *assignment, const char *want)
{
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	CHECK_EQ_INT(config_set(&c, assignment, &err), -1);
	CHECK_STR_CONTAINS(err.message, want);
	config_free(&c);
}

static void
test_set_errors(void)
{
	expect_set_error("federation.rounds", "expected key.path=value");
	expect_set_error("=3", "expected key.path=value");
	expect_set_error("federation.rounds=three",
	                 "--set: federation.rounds: expected a positive "
	                 "integer, got \"three\"");
	expect_set_error("federation.rounds=", "got \"\"");
	expect_set_error("train.lr=abc", "train.lr: expected a number");
	expect_set_error("train.lr=nan", "train.lr: expected a number");
	expect_set_error("job.seed=-1", "job.seed: expected a non-negative "
	                                "integer");
	expect_set_error("train.optimizer=rmsprop", "expected one of \"sgd\", "
	                                            "\"adam\"");
	expect_set_error("evaluate.central=yes", "expected true or false");
	expect_set_error("nosuch.key=1", "nosuch.key: unknown key");
}

/* A file that cannot be read says so with the system's reason, not as
 * invalid JSON. */
static void
test_file_unreadable(void)
{
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	char path[512], want[600];
	snprintf(path, sizeof path, "%s/no-such.json", harness_tmpdir());
	CHECK_EQ_INT(config_load_file(&c, path, &err), -1);
	snprintf(want, sizeof want,
	         "%s: cannot open: No such file or directory", path);
	CHECK_STR_CONTAINS(err.message, want);
	CHECK_EQ_INT(config_load_file(&c, harness_tmpdir(), &err), -1);
	snprintf(want, sizeof want, "%s: cannot read: Is a directory",
	         harness_tmpdir());
	CHECK_STR_CONTAINS(err.message, want);
	config_free(&c);
}

/* An unknown key is named with its file and, when a real key is close
 * (a typo, or a key of that name in another section), suggested. */
static void
test_unknown_key_suggestions(void)
{
	expect_file_error("{\"availability\": {\"p\": 0.5}}",
	                  ": availability.p: unknown key; did you mean "
	                  "federation.availability?");
	expect_file_error("{\"availability\": 0.5}",
	                  ": availability: expected an object of keys; did "
	                  "you mean federation.availability?");
	expect_file_error("{\"federation\": {\"round\": 3}}",
	                  ": federation.round: unknown key; did you mean "
	                  "federation.rounds?");
	expect_file_error("{\"modle\": {\"name\": \"mlp\"}}",
	                  ": modle.name: unknown key; did you mean "
	                  "model.name?");
	expect_file_error("{\"train\": {\"rounds\": 3}}",
	                  ": train.rounds: unknown key; did you mean "
	                  "federation.rounds?");
	expect_set_error("availability.p=0.5",
	                 "--set: availability.p: unknown key; did you mean "
	                 "federation.availability?");
	expect_set_error("federation.availabilty=0.5",
	                 "did you mean federation.availability?");
	expect_set_error("federation.availability.p=0.5",
	                 "did you mean federation.availability?");
	/* Nothing close: no guess, only where the keys are listed. */
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	CHECK_EQ_INT(config_set(&c, "nosuch.key=1", &err), -1);
	CHECK_STR_CONTAINS(err.message, "--set: nosuch.key: unknown key "
	                                "(cohort-orchestrator --help lists "
	                                "the keys)");
	CHECK(strstr(err.message, "did you mean") == NULL);
	config_free(&c);
}

static void
test_check(void)
{
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	config_set(&c, "federation.fit_clients=3", &err);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "federation.fit_clients (3) is larger "
	                                "than federation.clients (2)");
	config_set(&c, "federation.fit_clients=2", &err);
	config_set(&c, "federation.min_clients=5", &err);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "federation.min_clients (5)");
	config_set(&c, "federation.min_clients=2", &err);
	config_set(&c, "federation.min_fit=3", &err);
	CHECK_EQ_INT(config_check(&c, &err), -1);
	CHECK_STR_CONTAINS(err.message, "federation.min_fit (3)");
	config_free(&c);
}

/* config_check of c after the --set assignments (NULL-terminated): ok
 * when want is NULL, else an error containing want. */
static void
expect_check(const char *want, ...)
{
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	va_list ap;
	va_start(ap, want);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
		CHECK_EQ_INT(config_set(&c, a, &err), 0);
	va_end(ap);
	int rc = config_check(&c, &err);
	if (want == NULL) {
		CHECK_EQ_INT(rc, 0);
	} else {
		CHECK_EQ_INT(rc, -1);
		CHECK_STR_CONTAINS(err.message, want);
	}
	config_free(&c);
}

/* Model gpt2 and text data go together; gpt2's sizes resolve from the
 * preset and model.n_*; its keys are refused with other models. */
static void
test_check_text(void)
{
	expect_check(NULL, "model.name=gpt2", "data.dataset=text", NULL);
	expect_check("model.name gpt2 trains on text: set data.dataset text",
	             "model.name=gpt2", NULL);
	expect_check("data.dataset text: model mlp trains on images",
	             "data.dataset=text", NULL);
	expect_check("train.warmup_steps: only model.name gpt2 reads it",
	             "train.warmup_steps=10", NULL);
	expect_check("model.n_head: only model.name gpt2 reads it",
	             "model.n_head=4", NULL);
	expect_check("evaluate.max_tokens: only model.name gpt2 reads it",
	             "evaluate.max_tokens=5", NULL);
	expect_check("model.n_embd 100 is not a multiple of model.n_head 12 "
	             "(model.preset gpt2-small",
	             "model.name=gpt2", "data.dataset=text",
	             "model.preset=gpt2-small", "model.n_embd=100", NULL);
	expect_check("train.seq_len 2048 is longer than the model's context "
	             "(model.n_ctx 1024)",
	             "model.name=gpt2", "data.dataset=text",
	             "model.preset=gpt2-small", "train.seq_len=2048", NULL);
	expect_check(NULL, "model.name=gpt2", "data.dataset=text",
	             "model.n_ctx=2048", "train.seq_len=2048", NULL);
	expect_check("worker.device cuda:1: model gpt2 trains on the CPU only",
	             "model.name=gpt2", "data.dataset=text",
	             "worker.device=cuda:1", NULL);
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	struct gpt2_config g;
	config_set(&c, "model.preset=gpt2-medium", &err);
	config_set(&c, "model.n_layer=3", &err);
	CHECK_EQ_INT(config_gpt2(&c, &g, &err), 0);
	CHECK(g.num_layers == 3 && g.num_heads == 16 && g.channels == 1024 &&
	      g.max_seq_len == 1024 && g.vocab_size == 50257);
	config_free(&c);
}

static void
test_round_trip(void)
{
	struct config a, b;
	config_defaults(&a);
	struct ipc_error err;
	config_set(&a, "federation.clients=9", &err);
	config_set(&a, "train.lr=0.123456789", &err);
	config_set(&a, "data.partition=dirichlet", &err);
	config_set(&a, "evaluate.central=false", &err);
	config_set(&a, "launcher.worker=/opt/w", &err);
	char path[512];
	snprintf(path, sizeof path, "%s/resolved.json", harness_tmpdir());
	CHECK_EQ_INT(config_save(&a, path, &err), 0);
	config_defaults(&b);
	CHECK_EQ_INT(config_load_file(&b, path, &err), 0);
	CHECK_EQ_INT(b.federation.clients, 9);
	CHECK(b.train.lr == 0.123456789);
	CHECK(strcmp(b.data.partition, "dirichlet") == 0);
	CHECK(!b.evaluate.central);
	CHECK(strcmp(b.launcher.worker, "/opt/w") == 0);
	CHECK(strcmp(b.job.name, a.job.name) == 0);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
	config_free(&a);
	config_free(&b);
}

/* Paths in a config file are relative to the file, paths of --set to the
 * current directory; both are made absolute, others are left alone. */
static void
test_relative_paths(void)
{
	char dir[512], path[600];
	snprintf(dir, sizeof dir, "%s/cfgdir", harness_tmpdir());
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/job.json", dir);
	FILE *f = fopen(path, "w");
	fputs("{\"data\": {\"dir\": \"cifar-10-batches-bin\","
	      " \"cache_dir\": \"../cache\"},"
	      " \"model\": {\"init\": \"./init.safetensors\"},"
	      " \"launcher\": {\"worker\": \"bin/w\"},"
	      " \"job\": {\"workspace_root\": \"/abs/runs\"}}",
	      f);
	fclose(f);
	char *real = realpath(dir, NULL);
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	CHECK_EQ_INT(config_load_file(&c, path, &err), 0);
	char want[700];
	snprintf(want, sizeof want, "%s/cifar-10-batches-bin", real);
	CHECK_STR_CONTAINS(c.data.dir, want);
	CHECK_EQ_INT(strlen(c.data.dir), strlen(want));
	char *parent = xstrdup(real);
	*strrchr(parent, '/') = '\0';
	snprintf(want, sizeof want, "%s/cache", parent);
	CHECK_EQ_INT(strcmp(c.data.cache_dir, want), 0);
	free(parent);
	snprintf(want, sizeof want, "%s/init.safetensors", real);
	CHECK_EQ_INT(strcmp(c.model.init, want), 0);
	CHECK_EQ_INT(strcmp(c.job.workspace_root, "/abs/runs"), 0);
	CHECK_EQ_INT(strcmp(c.launcher.worker, "bin/w"), 0); /* a command */
	CHECK_EQ_INT(strcmp(c.job.name, "cohort"), 0);
	char *cwd = getcwd(NULL, 0);
	CHECK_EQ_INT(config_set(&c, "data.dir=mnist", &err), 0);
	snprintf(want, sizeof want, "%s/mnist", cwd);
	CHECK_EQ_INT(strcmp(c.data.dir, want), 0);
	free(cwd);
	free(real);
	config_free(&c);
}

/* A saved config whose tracking URI holds a password is readable by its
 * owner only. */
static void
test_save_secret(void)
{
	struct config c;
	config_defaults(&c);
	struct ipc_error err;
	CHECK_EQ_INT(
	    config_set(&c, "tracking.mlflow_uri=https://bob:pw@mlflow:5000",
	               &err),
	    0);
	char path[512];
	snprintf(path, sizeof path, "%s/secret.json", harness_tmpdir());
	CHECK_EQ_INT(config_save(&c, path, &err), 0);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	config_free(&c);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_file_and_set);
	RUN(test_file_errors);
	RUN(test_set_errors);
	RUN(test_file_unreadable);
	RUN(test_unknown_key_suggestions);
	RUN(test_check);
	RUN(test_check_text);
	RUN(test_round_trip);
	RUN(test_save_secret);
	RUN(test_relative_paths);
	return harness_finish();
}
