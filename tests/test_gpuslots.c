/* test_gpuslots.c: GPU slot planning without a GPU: slots derived from free
 * memory or configured, interleaved slot order and least-loaded picking,
 * inherited CUDA_VISIBLE_DEVICES as indices, UUIDs, prefixes, "" and "-1",
 * malformed and unknown entries, planning without NVML, cuda:N. */
#include <stdlib.h>
#include <string.h>

#include "gpuslots.h"
#include "harness.h"

#define MIB (1024ull * 1024ull)

/* A fake NVML inventory of n GPUs with the given free MiB. */
static void
inventory(struct gpuinfo_device *inv, unsigned n, const uint64_t *free_mb)
{
	static const char *const uuids[] = {
	    "GPU-11111111-aaaa-0000-0000-000000000000",
	    "GPU-22222222-bbbb-0000-0000-000000000000",
	    "GPU-22223333-cccc-0000-0000-000000000000",
	    "GPU-44444444-dddd-0000-0000-000000000000"};
	for (unsigned i = 0; i < n; i++) {
		memset(&inv[i], 0, sizeof inv[i]);
		inv[i].index = i;
		snprintf(inv[i].name, sizeof inv[i].name, "Fake GPU %u", i);
		snprintf(inv[i].uuid, sizeof inv[i].uuid, "%s", uuids[i]);
		inv[i].total_bytes = 81559ull * MIB;
		inv[i].free_bytes =
		    free_mb[i] * MIB + 12345; /* not whole MiB */
		inv[i].used_bytes = inv[i].total_bytes - inv[i].free_bytes;
	}
}

/* A request for the given list with derived slots of mem MiB. */
static struct gpuslots_request
request(const char *visible, unsigned per_gpu, uint64_t mem)
{
	struct gpuslots_request r = {visible, "CUDA_VISIBLE_DEVICES", -1,
	                             per_gpu, mem};
	return r;
}

/* Plan that must fail; returns its message (static). */
static const char *
plan_error(const struct gpuinfo_device *inv, unsigned n,
           const struct gpuslots_request *req)
{
	static struct ipc_error err;
	struct gpuslots s;
	memset(&err, 0, sizeof err);
	int rc = gpuslots_plan(inv, n, req, &s, &err);
	CHECK_EQ_INT(rc, -1);
	CHECK_EQ_INT(s.nslots, 0);
	CHECK(s.gpu == NULL);
	if (rc == 0)
		gpuslots_free(&s);
	return err.message;
}

static void
test_slots_derived_from_free_memory(void)
{
	struct gpuinfo_device inv[2];
	uint64_t free_mb[] = {10000, 5000};
	inventory(inv, 2, free_mb);
	struct gpuslots_request req = request(NULL, 0, 2048);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 2, &req, &s, &err), 0);
	CHECK_EQ_INT(s.ngpus, 2);
	CHECK_EQ_INT(s.gpu[0].slots, 4); /* floor(10000 / 2048) */
	CHECK_EQ_INT(s.gpu[1].slots, 2); /* floor(5000 / 2048) */
	CHECK_EQ_INT(s.nslots, 6);
	CHECK_EQ_INT(s.gpu[0].free_mb, 10000);
	/* Without a list, a worker is pinned by UUID, never by index. */
	CHECK(strcmp(s.gpu[0].visible, inv[0].uuid) == 0);
	CHECK(strcmp(s.gpu[1].visible, inv[1].uuid) == 0);
	CHECK_EQ_INT(s.gpu[1].nvml_index, 1);
	/* Interleaved: 0 1 0 1 0 0. */
	unsigned want[] = {0, 1, 0, 1, 0, 0};
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ_INT(s.slot_gpu[i], want[i]);
	CHECK(strcmp(gpuslots_visible(&s, 3), inv[1].uuid) == 0);
	gpuslots_free(&s);
}

static void
test_slots_configured(void)
{
	struct gpuinfo_device inv[2];
	uint64_t free_mb[] = {80000, 100};
	inventory(inv, 2, free_mb);
	struct gpuslots_request req = request(NULL, 3, 2048);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 2, &req, &s, &err), 0);
	CHECK_EQ_INT(s.gpu[0].slots, 3);
	CHECK_EQ_INT(s.gpu[1].slots, 3);
	CHECK_EQ_INT(s.nslots, 6);
	gpuslots_free(&s);
}

static void
test_little_or_no_free_memory_still_one_slot(void)
{
	struct gpuinfo_device inv[3];
	uint64_t free_mb[] = {0, 2047, 2048};
	inventory(inv, 3, free_mb);
	inv[0].free_bytes = 0;
	struct gpuslots_request req = request(NULL, 0, 2048);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 3, &req, &s, &err), 0);
	CHECK_EQ_INT(s.gpu[0].slots, 1); /* zero free */
	CHECK_EQ_INT(s.gpu[1].slots, 1); /* less than one worker's share */
	CHECK_EQ_INT(s.gpu[2].slots, 1);
	gpuslots_free(&s);
	req = request(NULL, 0, 1000000); /* larger than any GPU */
	CHECK_EQ_INT(gpuslots_plan(inv, 3, &req, &s, &err), 0);
	CHECK_EQ_INT(s.nslots, 3);
	gpuslots_free(&s);
}

static void
test_pick_fills_gpus_evenly(void)
{
	struct gpuinfo_device inv[3];
	uint64_t free_mb[] = {8192, 4096, 8192};
	inventory(inv, 3, free_mb);
	struct gpuslots_request req = request(NULL, 0, 2048);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 3, &req, &s, &err), 0);
	CHECK_EQ_INT(s.nslots, 10); /* 4 + 2 + 4 */
	unsigned char busy[10] = {0};
	/* Filling from empty: round robin 0 1 2 0 1 2 0 2 0 2. */
	unsigned want[] = {0, 1, 2, 0, 1, 2, 0, 2, 0, 2};
	for (unsigned i = 0; i < 10; i++) {
		int k = gpuslots_pick(&s, busy);
		CHECK(k >= 0);
		if (k < 0)
			break;
		CHECK_EQ_INT(s.slot_gpu[k], want[i]);
		busy[k] = 1;
	}
	CHECK_EQ_INT(gpuslots_pick(&s, busy), -1);

	/* Release every worker of GPU 0 and one of GPU 2 (GPU 1 stays
	 * full): three go to GPU 0, the emptiest; at 3 and 3 GPU 0 wins the
	 * tie; then only GPU 2 has a free slot. */
	for (unsigned i = 0; i < 10; i++)
		if (s.slot_gpu[i] == 0)
			busy[i] = 0;
	for (unsigned i = 0; i < 10; i++)
		if (s.slot_gpu[i] == 2) {
			busy[i] = 0;
			break;
		}
	unsigned next[] = {0, 0, 0, 0, 2};
	for (unsigned i = 0; i < 5; i++) {
		int k = gpuslots_pick(&s, busy);
		CHECK(k >= 0);
		if (k < 0)
			break;
		CHECK_EQ_INT(s.slot_gpu[k], next[i]);
		busy[k] = 1;
	}
	CHECK_EQ_INT(gpuslots_pick(&s, busy), -1);
	gpuslots_free(&s);
}

/* A long seeded run of takes and releases: every pick lands on a GPU
 * whose load is the least among GPUs with a free slot, and no GPU ever
 * holds more than its slots. */
static void
test_pick_least_loaded_always(void)
{
	struct gpuinfo_device inv[4];
	uint64_t free_mb[] = {6144, 2048, 10240, 4096};
	inventory(inv, 4, free_mb);
	struct gpuslots_request req = request(NULL, 0, 2048);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 4, &req, &s, &err), 0);
	CHECK_EQ_INT(s.nslots, 3 + 1 + 5 + 2);
	unsigned char busy[11] = {0};
	uint32_t x = 12345;
	unsigned bad = 0;
	for (unsigned step = 0; step < 5000; step++) {
		x = x * 1664525u + 1013904223u;
		if ((x >> 16) % 3 != 0) {
			unsigned load[4] = {0}, cap[4] = {0};
			for (unsigned i = 0; i < s.nslots; i++) {
				cap[s.slot_gpu[i]]++;
				load[s.slot_gpu[i]] += busy[i];
			}
			int k = gpuslots_pick(&s, busy);
			unsigned least = ~0u;
			for (unsigned g = 0; g < 4; g++)
				if (load[g] < cap[g] && load[g] < least)
					least = load[g];
			if (k < 0) {
				bad += least != ~0u;
				continue;
			}
			bad += busy[k] != 0 || load[s.slot_gpu[k]] != least;
			busy[k] = 1;
		} else {
			unsigned i = (x >> 8) % s.nslots;
			busy[i] = 0;
		}
	}
	CHECK_EQ_INT(bad, 0);
	gpuslots_free(&s);
}

static void
test_inherited_indices(void)
{
	struct gpuinfo_device inv[4];
	uint64_t free_mb[] = {1000, 4096, 8192, 20000};
	inventory(inv, 4, free_mb);
	/* Slurm gave this job GPUs 2 and 1, in that order. */
	struct gpuslots_request req = request(" 2, 1", 0, 2048);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 4, &req, &s, &err), 0);
	CHECK_EQ_INT(s.ngpus, 2);
	/* The worker gets the entry as inherited, so CUDA resolves it as it
	 * would have for the orchestrator; NVML's index gives the memory. */
	CHECK(strcmp(s.gpu[0].visible, "2") == 0);
	CHECK(strcmp(s.gpu[1].visible, "1") == 0);
	CHECK_EQ_INT(s.gpu[0].nvml_index, 2);
	CHECK_EQ_INT(s.gpu[0].slots, 4);
	CHECK_EQ_INT(s.gpu[1].slots, 2);
	CHECK(strcmp(gpuslots_visible(&s, 1), "1") == 0);
	gpuslots_free(&s);
}

static void
test_inherited_uuids(void)
{
	struct gpuinfo_device inv[4];
	uint64_t free_mb[] = {1000, 4096, 8192, 20000};
	inventory(inv, 4, free_mb);
	char list[256];
	snprintf(list, sizeof list, "%s,GPU-4444", inv[2].uuid);
	struct gpuslots_request req = request(list, 0, 4096);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 4, &req, &s, &err), 0);
	CHECK_EQ_INT(s.ngpus, 2);
	CHECK_EQ_INT(s.gpu[0].nvml_index, 2);
	CHECK_EQ_INT(s.gpu[1].nvml_index, 3); /* unique prefix */
	CHECK(strcmp(s.gpu[1].visible, "GPU-4444") == 0);
	CHECK_EQ_INT(s.gpu[0].slots, 2);
	CHECK_EQ_INT(s.gpu[1].slots, 4);
	gpuslots_free(&s);

	/* "GPU-2222" starts two UUIDs: refused, naming both. */
	req = request("GPU-2222", 0, 4096);
	const char *m = plan_error(inv, 4, &req);
	CHECK_STR_CONTAINS(m, "prefix of more than one");
	CHECK_STR_CONTAINS(m, inv[1].uuid);
	CHECK_STR_CONTAINS(m, inv[2].uuid);
	/* A UUID NVML does not know. */
	req = request("0,GPU-99999999", 0, 4096);
	m = plan_error(inv, 4, &req);
	CHECK_STR_CONTAINS(m, "CUDA_VISIBLE_DEVICES=\"0,GPU-99999999\"");
	CHECK_STR_CONTAINS(m, "no GPU with UUID GPU-99999999");
	req = request("MIG-5f0b", 1, 4096);
	CHECK_STR_CONTAINS(plan_error(inv, 4, &req), "MIG");
}

static void
test_no_gpu_lists(void)
{
	struct gpuinfo_device inv[2];
	uint64_t free_mb[] = {4096, 4096};
	inventory(inv, 2, free_mb);
	const char *none[] = {"", "-1", "-1,0"};
	for (unsigned i = 0; i < 3; i++) {
		struct gpuslots_request req = request(none[i], 0, 1024);
		struct gpuslots s;
		struct ipc_error err;
		CHECK_EQ_INT(gpuslots_plan(inv, 2, &req, &s, &err), 0);
		CHECK_EQ_INT(s.ngpus, 0);
		CHECK_EQ_INT(s.nslots, 0);
		unsigned char busy[1] = {0};
		CHECK_EQ_INT(gpuslots_pick(&s, busy), -1);
		gpuslots_free(&s);
	}
	/* "-1" ends the list as it does for CUDA. */
	struct gpuslots_request req = request("1,-1,0", 0, 1024);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 2, &req, &s, &err), 0);
	CHECK_EQ_INT(s.ngpus, 1);
	CHECK(strcmp(s.gpu[0].visible, "1") == 0);
	gpuslots_free(&s);
	/* NVML reporting no GPU at all. */
	req = request(NULL, 0, 1024);
	CHECK_EQ_INT(gpuslots_plan(inv, 0, &req, &s, &err), 0);
	CHECK_EQ_INT(s.nslots, 0);
	gpuslots_free(&s);
}

static void
test_malformed_lists(void)
{
	struct gpuinfo_device inv[2];
	uint64_t free_mb[] = {4096, 4096};
	inventory(inv, 2, free_mb);
	struct {
		const char *list, *says;
	} cases[] = {
	    {"abc", "entry \"abc\" is neither a device index nor"},
	    {"0,,1", "entry \"\" is neither"},
	    {"0,", "empty entry after the last comma"},
	    {"1.5", "entry \"1.5\""},
	    {"GPU-", "entry \"GPU-\""},
	    {"+1", "entry \"+1\""},
	    {"-2", "entry \"-2\""},
	    {"NoDevFiles", "entry \"NoDevFiles\""},
	    {"2", "device 2, but NVML reports 2 GPUs"},
	    {"99999999999999999999999", "neither"},
	    {"0,0", "\"0\" names a GPU listed before"},
	    {"1,GPU-2222222", "\"GPU-2222222\" names a GPU listed before"},
	};
	for (unsigned i = 0; i < ARRAY_LEN(cases); i++) {
		struct gpuslots_request req = request(cases[i].list, 0, 1024);
		req.visible_name = "gpu.devices";
		const char *m = plan_error(inv, 2, &req);
		CHECK_STR_CONTAINS(m, cases[i].says);
		CHECK_STR_CONTAINS(m, "gpu.devices=\"");
	}
}

static void
test_without_nvml(void)
{
	/* The list is used as given; slots must be configured. */
	struct gpuslots_request req = request("0,1,GPU-abc", 2, 2048);
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(NULL, 0, &req, &s, &err), 0);
	CHECK_EQ_INT(s.ngpus, 3);
	CHECK_EQ_INT(s.nslots, 6);
	CHECK(strcmp(s.gpu[2].visible, "GPU-abc") == 0);
	CHECK_EQ_INT(s.gpu[2].nvml_index, -1);
	gpuslots_free(&s);
	req = request("0,1", 0, 2048);
	CHECK_STR_CONTAINS(plan_error(NULL, 0, &req),
	                   "set gpu.workers_per_gpu");
	req = request(NULL, 2, 2048);
	CHECK_STR_CONTAINS(plan_error(NULL, 0, &req), "without NVML");
	req = request("0,0", 2, 2048);
	CHECK_STR_CONTAINS(plan_error(NULL, 0, &req), "listed before");
	req = request("x", 2, 2048);
	CHECK_STR_CONTAINS(plan_error(NULL, 0, &req), "neither");
}

static void
test_one_gpu_of_the_visible_ones(void)
{
	struct gpuinfo_device inv[4];
	uint64_t free_mb[] = {4096, 8192, 2048, 2048};
	inventory(inv, 4, free_mb);
	/* cuda:1 with "3,1" visible is NVML's GPU 1, CUDA's device 1. */
	struct gpuslots_request req = request("3,1", 0, 2048);
	req.only = 1;
	struct gpuslots s;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 4, &req, &s, &err), 0);
	CHECK_EQ_INT(s.ngpus, 1);
	CHECK(strcmp(s.gpu[0].visible, "1") == 0);
	CHECK_EQ_INT(s.nslots, 4);
	for (unsigned i = 0; i < s.nslots; i++)
		CHECK_EQ_INT(s.slot_gpu[i], 0);
	gpuslots_free(&s);
	req.only = 2;
	CHECK_STR_CONTAINS(plan_error(inv, 4, &req),
	                   "cuda:2: only 2 GPUs are visible");
}

static void
test_copy_is_deep(void)
{
	struct gpuinfo_device inv[2];
	uint64_t free_mb[] = {4096, 6144};
	inventory(inv, 2, free_mb);
	struct gpuslots_request req = request("1,0", 0, 2048);
	struct gpuslots s, t;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_plan(inv, 2, &req, &s, &err), 0);
	gpuslots_copy(&t, &s);
	CHECK_EQ_INT(t.nslots, s.nslots);
	CHECK(t.gpu[0].visible != s.gpu[0].visible);
	gpuslots_free(&s);
	CHECK(strcmp(t.gpu[0].visible, "1") == 0);
	CHECK_EQ_INT(t.gpu[0].slots, 3);
	CHECK_EQ_INT(t.slot_gpu[4], 0);
	gpuslots_free(&t);
}

static void
test_device_strings(void)
{
	enum gpuslots_device kind;
	int index;
	struct ipc_error err;
	CHECK_EQ_INT(gpuslots_parse_device("auto", &kind, &index, &err), 0);
	CHECK(kind == GPUSLOTS_AUTO && index == -1);
	CHECK_EQ_INT(gpuslots_parse_device("cpu", &kind, &index, &err), 0);
	CHECK(kind == GPUSLOTS_CPU && index == -1);
	CHECK_EQ_INT(gpuslots_parse_device("cuda", &kind, &index, &err), 0);
	CHECK(kind == GPUSLOTS_CUDA && index == -1);
	CHECK_EQ_INT(gpuslots_parse_device("cuda:3", &kind, &index, &err), 0);
	CHECK(kind == GPUSLOTS_CUDA && index == 3);
	const char *bad[] = {"gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", ""};
	for (unsigned i = 0; i < ARRAY_LEN(bad); i++) {
		CHECK_EQ_INT(gpuslots_parse_device(bad[i], &kind, &index, &err),
		             -1);
		CHECK_STR_CONTAINS(err.message, "expected auto, cpu, cuda or "
		                                "cuda:N");
	}
}

int
main(void)
{
	RUN(test_slots_derived_from_free_memory);
	RUN(test_slots_configured);
	RUN(test_little_or_no_free_memory_still_one_slot);
	RUN(test_pick_fills_gpus_evenly);
	RUN(test_pick_least_loaded_always);
	RUN(test_inherited_indices);
	RUN(test_inherited_uuids);
	RUN(test_no_gpu_lists);
	RUN(test_malformed_lists);
	RUN(test_without_nvml);
	RUN(test_one_gpu_of_the_visible_ones);
	RUN(test_copy_is_deep);
	RUN(test_device_strings);
	return harness_finish();
}
