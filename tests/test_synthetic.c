/* test_synthetic.c: the synthetic model's presets have GPT-2's parameter
 * and tensor counts and state_dict names, its fill and update follow the
 * closed form the e2e tests and benchmarks check against, and a
 * safetensors file's tensor list can stand in for a preset. */
#include "harness.h"
#include "synthetic.h"

#include <stdlib.h>

#include "safetensors.h"
#include "util.h"

/* The manifest of preset, or a failed check. */
static int
load(const char *preset, struct tensor_manifest *m)
{
	struct ipc_error err;
	if (synthetic_manifest(preset, NULL, m, &err) < 0) {
		harness_fail(__FILE__, __LINE__, "%s: %s", preset, err.message);
		return -1;
	}
	return 0;
}

/* Check tensor name has the given shape (d1 == 0: rank 1). */
static void
expect_shape(const struct tensor_manifest *m, const char *name, uint64_t d0,
             uint64_t d1)
{
	const struct tensor_desc *t = tensor_manifest_find(m, name);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK_EQ_INT(t->rank, d1 ? 2 : 1);
	CHECK_EQ_INT(t->shape[0], d0);
	if (d1)
		CHECK_EQ_INT(t->shape[1], d1);
	CHECK_EQ_INT(t->dtype, DTYPE_F32);
}

/* gpt2-small: Hugging Face GPT2Model's 124,439,808 parameters in 148
 * tensors. */
static void
test_gpt2_small(void)
{
	struct tensor_manifest m;
	if (load("gpt2-small", &m) < 0)
		return;
	CHECK_EQ_INT(m.count, 148);
	CHECK_EQ_INT(tensor_manifest_numel(&m), 124439808);
	CHECK(m.total_size >= 124439808ull * 4);
	CHECK_STR_CONTAINS(m.tensors[0].name, "wte.weight");
	CHECK_STR_CONTAINS(m.tensors[m.count - 1].name, "ln_f.bias");
	expect_shape(&m, "wte.weight", 50257, 768);
	expect_shape(&m, "wpe.weight", 1024, 768);
	expect_shape(&m, "h.0.attn.c_attn.weight", 768, 2304);
	expect_shape(&m, "h.0.attn.c_attn.bias", 2304, 0);
	expect_shape(&m, "h.11.mlp.c_fc.weight", 768, 3072);
	expect_shape(&m, "h.11.mlp.c_proj.weight", 3072, 768);
	expect_shape(&m, "h.11.ln_2.bias", 768, 0);
	CHECK(tensor_manifest_find(&m, "h.12.ln_1.weight") == NULL);
	tensor_manifest_free(&m);
}

/* gpt2-large: 774,030,080 parameters in 436 tensors (36 layers of 1280). */
static void
test_gpt2_large(void)
{
	struct tensor_manifest m;
	if (load("gpt2-large", &m) < 0)
		return;
	CHECK_EQ_INT(m.count, 436);
	CHECK_EQ_INT(tensor_manifest_numel(&m), 774030080);
	expect_shape(&m, "wte.weight", 50257, 1280);
	expect_shape(&m, "h.35.attn.c_proj.weight", 1280, 1280);
	expect_shape(&m, "h.35.mlp.c_fc.bias", 5120, 0);
	CHECK(tensor_manifest_find(&m, "h.36.ln_1.weight") == NULL);
	tensor_manifest_free(&m);
}

/* An unknown preset names the valid ones. */
static void
test_unknown_preset(void)
{
	struct tensor_manifest m;
	struct ipc_error err;
	CHECK_EQ_INT(synthetic_manifest("gpt2-xxl", NULL, &m, &err), -1);
	CHECK_STR_CONTAINS(err.message, "gpt2-xxl");
	CHECK_STR_CONTAINS(err.message, "gpt2-large");
	CHECK_EQ_INT(m.count, 0);
}

/* Element k of the initial model, from the documented formula. */
static float
initial(uint64_t k)
{
	return (float)((int)(k * 2654435761ull % 257) - 128) / 512.0f;
}

/* A region of m, zeroed (padding included). */
static float *
region_of(const struct tensor_manifest *m)
{
	return xcalloc(1, m->total_size);
}

/* The fill follows the formula over the whole model in manifest order,
 * across tensor boundaries and padding. */
static void
test_fill(void)
{
	struct tensor_manifest m;
	if (load("tiny", &m) < 0)
		return;
	float *r = region_of(&m);
	synthetic_fill(&m, r);
	uint64_t k = 0;
	int bad = 0;
	for (size_t i = 0; i < m.count; i++) {
		const float *x =
		    (const float *)((char *)r + m.tensors[i].offset);
		for (size_t e = 0; e < m.tensors[i].nbytes / 4; e++, k++)
			bad += x[e] != initial(k);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(k, tensor_manifest_numel(&m));
	free(r);
	tensor_manifest_free(&m);
}

/* fit adds epochs * (client + 1) * (1 + (k + round) mod 4) * 2^-12 to
 * every element, returns client + 1 examples; 0 epochs change nothing. */
static void
test_fit_closed_form(void)
{
	struct tensor_manifest m;
	if (load("tiny", &m) < 0)
		return;
	float *r = region_of(&m);
	synthetic_fill(&m, r);
	CHECK_EQ_INT(synthetic_fit(&m, r, 2, 5, 0), 3);
	float *same = region_of(&m);
	synthetic_fill(&m, same);
	CHECK(memcmp(r, same, m.total_size) == 0);
	CHECK_EQ_INT(synthetic_fit(&m, r, 2, 5, 2), 3);
	uint64_t k = 0;
	int bad = 0;
	for (size_t i = 0; i < m.count; i++) {
		const float *x =
		    (const float *)((char *)r + m.tensors[i].offset);
		for (size_t e = 0; e < m.tensors[i].nbytes / 4; e++, k++) {
			float d =
			    2.0f * 3.0f * (float)(1 + (k + 5) % 4) / 4096.0f;
			bad += x[e] != initial(k) + d;
		}
	}
	CHECK_EQ_INT(bad, 0);
	free(same);
	free(r);
	tensor_manifest_free(&m);
}

/* The initial model written as safetensors reads back as the fill, and
 * its tensor list (model.file) gives the preset's manifest. */
static void
test_file_manifest(void)
{
	struct ipc_error err;
	char *path = xasprintf("%s/tiny.safetensors", harness_tmpdir());
	CHECK_EQ_INT(synthetic_write_initial("tiny", NULL, path, &err), 0);
	struct tensor_manifest tiny, file, read;
	if (load("tiny", &tiny) < 0)
		return;
	CHECK_EQ_INT(synthetic_manifest("ignored", path, &file, &err), 0);
	CHECK_EQ_INT(tensor_manifest_equal(&tiny, &file, &err), 0);
	void *region = NULL;
	CHECK_EQ_INT(safetensors_read(path, &read, &region, NULL, &err), 0);
	float *want = region_of(&tiny);
	synthetic_fill(&tiny, want);
	for (size_t i = 0; region != NULL && i < tiny.count; i++) {
		const struct tensor_desc *t = &tiny.tensors[i];
		const struct tensor_desc *u =
		    tensor_manifest_find(&read, t->name);
		CHECK(u != NULL && u->nbytes == t->nbytes);
		if (u != NULL)
			CHECK(memcmp((char *)region + u->offset,
			             (char *)want + t->offset, t->nbytes) == 0);
	}
	free(want);
	free(region);
	tensor_manifest_free(&read);
	tensor_manifest_free(&file);
	tensor_manifest_free(&tiny);
	CHECK_EQ_INT(synthetic_manifest("tiny", "/nonexistent/m.safetensors",
	                                &file, &err),
	             -1);
	CHECK_STR_CONTAINS(err.message, "/nonexistent/m.safetensors");
	free(path);
}

int
main(void)
{
	RUN(test_gpt2_small);
	RUN(test_gpt2_large);
	RUN(test_unknown_preset);
	RUN(test_fill);
	RUN(test_fit_closed_form);
	RUN(test_file_manifest);
	return harness_finish();
}
