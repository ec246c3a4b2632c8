/* dataset.c: decoding IDX and CIFAR-10 sources into a raw cache file once, and
 * mapping that cache read-only in every worker. */
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "atomicfile.h"
#include "dataset-impl.h"
#include "datasets.h"
#include "files.h"
#include "mapfile.h"
#include "rng.h"
#include "util.h"

#define CACHE_MAGIC "COHDSET\0"
#define CACHE_VERSION 1u
#define CACHE_ALIGN 64u
#define INDEX_NAME "source-index.txt"
#define INDEX_MAX_ENTRIES 256
#define IDX_MAX_DIM 4096u
#define IDX_MAX_BYTES (64ull << 30)
#define CIFAR_RECORD 3073u
#define CIFAR_PIXELS 3072u
#define NUM_CLASSES 10u
#define MAX_SOURCES 6
#define READ_CHUNK (16u << 20)

/* The cache file starts with this header (native byte order: the cache is a
 * local artefact, never shipped between machines). */
struct cache_header {
	char magic[8];
	uint32_t version;
	uint32_t count;
	uint32_t channels, height, width, classes;
	float mean[3], std[3];
	uint64_t pixels_offset, labels_offset, total_size;
};
_Static_assert(sizeof(struct cache_header) == 80, "cache header layout");

enum source_format { FORMAT_IDX, FORMAT_CIFAR };

/* How a dataset of ipc/datasets.c is read: its name, channels and
 * normalisation are the table's. */
struct dataset_kind {
	const struct dataset_info *info;
	enum source_format format;
	const char *fix; /* how a user gets the files */
};

static const struct dataset_kind kinds[] = {
    {&datasets[DATASET_FASHION_MNIST], FORMAT_IDX,
     "install them with `apt-get install dataset-fashion-mnist` or point "
     "data.dir at the directory holding the IDX files"},
    {&datasets[DATASET_MNIST], FORMAT_IDX,
     "download the MNIST IDX files (train-images-idx3-ubyte.gz, ...) and "
     "point data.dir at their directory"},
    {&datasets[DATASET_CIFAR10], FORMAT_CIFAR,
     "download the CIFAR-10 binary version (cifar-10-binary.tar.gz), "
     "unpack it and point data.dir at cifar-10-batches-bin"},
};

/* The resolved source files of one split, in the order they are decoded. */
struct sources {
	const struct dataset_kind *kind;
	int n;
	char *paths[MAX_SOURCES];
};

/* A growing byte buffer for data whose declared size may be a lie. */
struct bytes {
	uint8_t *data;
	size_t len;
};

/* Round up to the cache alignment. */
static uint64_t
align_up(uint64_t x)
{
	return (x + CACHE_ALIGN - 1) & ~(uint64_t)(CACHE_ALIGN - 1);
}

/* Free every path of a source list. */
static void
sources_free(struct sources *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->paths[i]);
	s->n = 0;
}

/* Find name.gz or name in dir; returns a new path or NULL. */
static char *
find_idx_file(const char *dir, const char *name)
{
	struct stat st;
	char *path = xasprintf("%s/%s.gz", dir, name);
	if (stat(path, &st) == 0)
		return path;
	free(path);
	path = xasprintf("%s/%s", dir, name);
	if (stat(path, &st) == 0)
		return path;
	free(path);
	return NULL;
}

/* Resolve the IDX image and label files of a split. */
static int
resolve_idx(const char *dir, const char *split, struct sources *s,
            struct ipc_error *err)
{
	const char *stem = strcmp(split, "train") == 0 ? "train" : "t10k";
	char images[64], labels[64];
	snprintf(images, sizeof images, "%s-images-idx3-ubyte", stem);
	snprintf(labels, sizeof labels, "%s-labels-idx1-ubyte", stem);
	const char *names[2] = {images, labels};
	for (int i = 0; i < 2; i++) {
		char *path = find_idx_file(dir, names[i]);
		if (path == NULL) {
			sources_free(s);
			return ipc_error_set(
			    err, IPC_E_IO,
			    "%s: missing %s/%s.gz (or %s without .gz): %s",
			    s->kind->info->name, dir, names[i], names[i],
			    s->kind->fix);
		}
		s->paths[s->n++] = path;
	}
	return 0;
}

/* Resolve the CIFAR-10 batch files of a split in dir or its
 * cifar-10-batches-bin subdirectory. */
static int
resolve_cifar(const char *dir, const char *split, struct sources *s,
              struct ipc_error *err)
{
	struct stat st;
	const char *first =
	    strcmp(split, "train") == 0 ? "data_batch_1.bin" : "test_batch.bin";
	char *base = xstrdup(dir);
	char *probe = xasprintf("%s/%s", base, first);
	if (stat(probe, &st) != 0) {
		free(base);
		base = xasprintf("%s/cifar-10-batches-bin", dir);
	}
	free(probe);
	int nfiles = strcmp(split, "train") == 0 ? 5 : 1;
	for (int i = 0; i < nfiles; i++) {
		char *path = nfiles == 1 ? xasprintf("%s/test_batch.bin", base)
		                         : xasprintf("%s/data_batch_%d.bin",
		                                     base, i + 1);
		if (stat(path, &st) != 0) {
			ipc_error_set(err, IPC_E_IO, "%s: missing %s: %s: %s",
			              s->kind->info->name, path,
			              strerror(errno), s->kind->fix);
			free(path);
			free(base);
			sources_free(s);
			return -1;
		}
		s->paths[s->n++] = path;
	}
	free(base);
	return 0;
}

/* Look up a dataset by name and find its source files for split. */
static int
resolve_sources(const char *name, const char *dir, const char *split,
                struct sources *s, struct ipc_error *err)
{
	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		if (strcmp(kinds[i].info->name, name) == 0)
			s->kind = &kinds[i];
	if (s->kind == NULL)
		return ipc_error_set(
		    err, IPC_E_BAD_VALUE,
		    "data.name: unknown dataset \"%s\" (choose "
		    "fashion-mnist, mnist or cifar10)",
		    name);
	if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "dataset split \"%s\": use train or test",
		                     split);
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return ipc_error_set(err, IPC_E_IO,
		                     "%s: data directory %s is missing: %s",
		                     name, dir, s->kind->fix);
	if (s->kind->format == FORMAT_IDX)
		return resolve_idx(dir, split, s, err);
	return resolve_cifar(dir, split, s, err);
}

int
dataset_make_dirs(const char *path, struct ipc_error *err)
{
	if (files_mkdirs(path, 0755, err) < 0)
		return -1;
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return ipc_error_set(err, IPC_E_IO,
		                     "cache directory %s is not a directory",
		                     path);
	return 0;
}

/* The identity of a source file as the index sidecar records it. */
struct source_stamp {
	uint64_t size, mtime_sec, mtime_nsec, dev, ino;
};

/* Stat a source file into its stamp. */
static int
stamp_file(const char *path, struct source_stamp *st_out, struct ipc_error *err)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return ipc_error_set(err, IPC_E_IO, "%s: %s", path,
		                     strerror(errno));
	st_out->size = (uint64_t)st.st_size;
	st_out->mtime_sec = (uint64_t)st.st_mtim.tv_sec;
	st_out->mtime_nsec = (uint64_t)st.st_mtim.tv_nsec;
	st_out->dev = (uint64_t)st.st_dev;
	st_out->ino = (uint64_t)st.st_ino;
	return 0;
}

/* Read the sidecar's lines (NULL-terminated array, empty when absent). */
static char **
index_load(const char *index_path, size_t *n_out)
{
	char **lines = NULL;
	size_t n = 0;
	FILE *f = fopen(index_path, "r");
	if (f != NULL) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		while ((len = getline(&line, &cap, f)) > 0) {
			if (line[len - 1] == '\n')
				line[len - 1] = '\0';
			lines = xreallocarray(lines, n + 1, sizeof *lines);
			lines[n++] = xstrdup(line);
		}
		free(line);
		fclose(f);
	}
	*n_out = n;
	return lines;
}

/* Free lines from index_load. */
static void
index_free(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/* Parse one sidecar line; returns 0 and the path's offset in the line. */
static int
index_parse(const char *line, struct source_stamp *st, uint32_t *crc,
            int *path_at)
{
	unsigned long long v[5];
	unsigned int c;
	int at = -1;
	if (sscanf(line, "%8x %llu %llu %llu %llu %llu %n", &c, &v[0], &v[1],
	           &v[2], &v[3], &v[4], &at) != 6 ||
	    at < 0)
		return -1;
	st->size = v[0];
	st->mtime_sec = v[1];
	st->mtime_nsec = v[2];
	st->dev = v[3];
	st->ino = v[4];
	*crc = c;
	*path_at = at;
	return 0;
}

/* Find the recorded crc32 of path when its stamp is unchanged. */
static int
index_lookup(char **lines, size_t n, const char *path,
             const struct source_stamp *want, uint32_t *crc)
{
	for (size_t i = 0; i < n; i++) {
		struct source_stamp st;
		int at;
		uint32_t c;
		if (index_parse(lines[i], &st, &c, &at) != 0 ||
		    strcmp(lines[i] + at, path) != 0)
			continue;
		if (memcmp(&st, want, sizeof st) == 0) {
			*crc = c;
			return 0;
		}
	}
	return -1;
}

struct index_update {
	char **lines;
	size_t n;
	const char *path;
	const struct source_stamp *st;
	uint32_t crc;
};

/* Write the sidecar: the new entry first, then up to the cap of older ones
 * for other paths. */
static int
index_fill(int fd, const void *arg, struct ipc_error *err)
{
	const struct index_update *u = arg;
	const struct source_stamp *st = u->st;
	char *head = xasprintf(
	    "%08x %llu %llu %llu %llu %llu %s\n", u->crc,
	    (unsigned long long)st->size, (unsigned long long)st->mtime_sec,
	    (unsigned long long)st->mtime_nsec, (unsigned long long)st->dev,
	    (unsigned long long)st->ino, u->path);
	int rc = write_all(fd, head, strlen(head));
	free(head);
	size_t kept = 1;
	for (size_t i = 0; rc == 0 && i < u->n && kept < INDEX_MAX_ENTRIES;
	     i++) {
		struct source_stamp old;
		uint32_t c;
		int at;
		if (index_parse(u->lines[i], &old, &c, &at) != 0 ||
		    strcmp(u->lines[i] + at, u->path) == 0)
			continue;
		if (write_all(fd, u->lines[i], strlen(u->lines[i])) != 0 ||
		    write_all(fd, "\n", 1) != 0)
			rc = -1;
		kept++;
	}
	if (rc != 0)
		return ipc_error_set(err, IPC_E_IO, "cannot write index: %s",
		                     strerror(errno));
	return 0;
}

/* crc32 of a file's raw bytes, read once. */
static int
crc_file(const char *path, uint32_t *crc, struct ipc_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ipc_error_set(err, IPC_E_IO, "%s: %s", path,
		                     strerror(errno));
	uint8_t *buf = xmalloc(1u << 20);
	uLong c = crc32(0L, Z_NULL, 0);
	ssize_t got;
	while ((got = read(fd, buf, 1u << 20)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		c = crc32(c, buf, (uInt)got);
	}
	int saved = errno;
	free(buf);
	close(fd);
	if (got < 0)
		return ipc_error_set(err, IPC_E_IO, "%s: read: %s", path,
		                     strerror(saved));
	*crc = (uint32_t)c;
	return 0;
}

/* crc32 of one source, from the sidecar when its stamp is unchanged, else by
 * reading it (and recording the result for next time). */
int
dataset_source_crc(const char *cache_dir, const char *path, uint32_t *crc,
                   uint64_t *size, struct ipc_error *err)
{
	char real[PATH_MAX];
	if (realpath(path, real) == NULL)
		return ipc_error_set(err, IPC_E_IO, "%s: %s", path,
		                     strerror(errno));
	struct source_stamp st = {0};
	if (stamp_file(real, &st, err) != 0)
		return -1;
	*size = st.size;
	char *index_path = xasprintf("%s/%s", cache_dir, INDEX_NAME);
	size_t n;
	char **lines = index_load(index_path, &n);
	int rc = 0;
	if (index_lookup(lines, n, real, &st, crc) != 0) {
		rc = crc_file(real, crc, err);
		struct index_update u = {lines, n, real, &st, *crc};
		/* The sidecar only saves time: failing to update it is not an
		 * error, the next prepare just reads the source again. */
		struct ipc_error ignored;
		if (rc == 0 && strchr(real, '\n') == NULL &&
		    atomicfile_write(index_path, index_fill, &u, &ignored) != 0)
			log_warn("%s", ignored.message);
	}
	index_free(lines, n);
	free(index_path);
	return rc;
}

/* The cache path: name, split and a 64-bit digest of the sources' crc32s
 * and sizes. */
static int
cache_path_for(const char *cache_dir, const char *split,
               const struct sources *s, char *path_out, size_t path_cap,
               struct ipc_error *err)
{
	uint64_t h = rng_derive(CACHE_VERSION, s->kind->info->name,
	                        strcmp(split, "train") == 0);
	for (int i = 0; i < s->n; i++) {
		uint32_t crc = 0;
		uint64_t size = 0;
		if (dataset_source_crc(cache_dir, s->paths[i], &crc, &size,
		                       err) != 0)
			return -1;
		h = rng_mix64(h ^ crc);
		h = rng_mix64(h ^ size);
	}
	int len =
	    snprintf(path_out, path_cap, "%s/%s-%s-%016llx.bin", cache_dir,
	             s->kind->info->name, split, (unsigned long long)h);
	if (len < 0 || (size_t)len >= path_cap)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "cache path under %s is longer than %zu "
		                     "bytes: use a shorter data.cache_dir",
		                     cache_dir, path_cap);
	return 0;
}

/* Read exactly want bytes from gz into a buffer grown as data arrives (so a
 * lying header cannot make us allocate more than the file holds). */
static int
gz_read_exact(gzFile gz, const char *path, uint64_t want, uint64_t already,
              struct bytes *out, struct ipc_error *err)
{
	out->data = NULL;
	out->len = 0;
	while (out->len < want) {
		size_t step = want - out->len < READ_CHUNK
		                  ? (size_t)(want - out->len)
		                  : READ_CHUNK;
		out->data = xrealloc(out->data, out->len + step);
		int got = gzread(gz, out->data + out->len, (unsigned)step);
		int errnum;
		const char *msg = gzerror(gz, &errnum);
		if (got < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR)) {
			ipc_error_set(err, IPC_E_IO,
			              "%s: corrupt gzip data: %s (re-download "
			              "or reinstall the file)",
			              path, msg);
			goto fail;
		}
		out->len += (size_t)got;
		if ((size_t)got < step) {
			ipc_error_set(
			    err, IPC_E_TRUNCATED,
			    "%s: truncated: expected %llu bytes, "
			    "file holds %llu%s (re-download or "
			    "reinstall the file)",
			    path, (unsigned long long)(already + want),
			    (unsigned long long)(already + out->len),
			    errnum == Z_BUF_ERROR ? ", gzip stream cut short"
			                          : "");
			goto fail;
		}
	}
	uint8_t extra;
	int more = gzread(gz, &extra, 1);
	if (more > 0) {
		ipc_error_set(err, IPC_E_TRAILING,
		              "%s: trailing bytes after the %llu bytes the "
		              "header declares (not an IDX file of this "
		              "dataset?)",
		              path, (unsigned long long)(already + want));
		goto fail;
	}
	int errnum;
	const char *msg = gzerror(gz, &errnum);
	if (more < 0 || errnum != Z_OK) {
		ipc_error_set(err, IPC_E_IO,
		              "%s: corrupt gzip data: %s (re-download or "
		              "reinstall the file)",
		              path, msg);
		goto fail;
	}
	return 0;
fail:
	free(out->data);
	out->data = NULL;
	return -1;
}

/* Read a big-endian IDX header: magic then ndims dimensions. */
static int
idx_header(gzFile gz, const char *path, uint32_t magic, uint32_t *dims,
           int ndims, struct ipc_error *err)
{
	uint8_t raw[16];
	int want = 4 * (ndims + 1);
	int got = gzread(gz, raw, (unsigned)want);
	int errnum;
	const char *msg = gzerror(gz, &errnum);
	if (got < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR))
		return ipc_error_set(err, IPC_E_IO, "%s: corrupt gzip data: %s",
		                     path, msg);
	if (got < want)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "%s: truncated: expected a %d-byte IDX "
		                     "header, file holds %d bytes",
		                     path, want, got);
	uint32_t v[4];
	for (int i = 0; i <= ndims; i++)
		v[i] = (uint32_t)raw[4 * i] << 24 |
		       (uint32_t)raw[4 * i + 1] << 16 |
		       (uint32_t)raw[4 * i + 2] << 8 | raw[4 * i + 3];
	if (v[0] != magic)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: bad IDX magic 0x%08x, expected "
		                     "0x%08x (wrong file, or not IDX)",
		                     path, v[0], magic);
	for (int i = 0; i < ndims; i++) {
		dims[i] = v[i + 1];
		if (dims[i] == 0 || (i > 0 && dims[i] > IDX_MAX_DIM))
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "%s: IDX dimension %d is %u (must "
			                     "be 1..%u)",
			                     path, i, dims[i],
			                     i > 0 ? IDX_MAX_DIM : UINT32_MAX);
	}
	return 0;
}

/* Open an IDX file (gzip'd or plain) for reading. */
static gzFile
idx_open(const char *path, struct ipc_error *err)
{
	gzFile gz = gzopen(path, "rb");
	if (gz == NULL)
		ipc_error_set(err, IPC_E_IO, "%s: cannot open: %s", path,
		              errno ? strerror(errno) : "out of memory");
	else
		gzbuffer(gz, 1u << 20);
	return gz;
}

/* The decoded content of one split, before it is written to the cache. */
struct decoded {
	struct cache_header h;
	struct bytes pixels, labels;
};

/* Decode IDX images + labels into d. */
static int
decode_idx(const struct sources *s, struct decoded *d, struct ipc_error *err)
{
	const char *img_path = s->paths[0], *lbl_path = s->paths[1];
	uint32_t idims[3], ldims[1];
	int rc = -1;
	gzFile img = idx_open(img_path, err);
	if (img == NULL)
		return -1;
	gzFile lbl = idx_open(lbl_path, err);
	if (lbl == NULL)
		goto out_img;
	if (idx_header(img, img_path, 0x00000803u, idims, 3, err) != 0 ||
	    idx_header(lbl, lbl_path, 0x00000801u, ldims, 1, err) != 0)
		goto out;
	if (ldims[0] != idims[0]) {
		ipc_error_set(err, IPC_E_MISMATCH,
		              "%s holds %u labels but %s holds %u images (the "
		              "files come from different sets)",
		              lbl_path, ldims[0], img_path, idims[0]);
		goto out;
	}
	uint64_t npix = (uint64_t)idims[0] * idims[1] * idims[2];
	if (npix > IDX_MAX_BYTES) {
		ipc_error_set(err, IPC_E_BAD_VALUE,
		              "%s: header declares %u images of %ux%u, over "
		              "%llu bytes (not a sane IDX file)",
		              img_path, idims[0], idims[1], idims[2],
		              (unsigned long long)IDX_MAX_BYTES);
		goto out;
	}
	if (gz_read_exact(lbl, lbl_path, ldims[0], 8, &d->labels, err) != 0)
		goto out;
	for (uint32_t i = 0; i < ldims[0]; i++)
		if (d->labels.data[i] >= NUM_CLASSES) {
			ipc_error_set(err, IPC_E_BAD_VALUE,
			              "%s: label %u of sample %u is out of "
			              "range (must be < %u)",
			              lbl_path, d->labels.data[i], i,
			              NUM_CLASSES);
			goto out;
		}
	if (gz_read_exact(img, img_path, npix, 16, &d->pixels, err) != 0)
		goto out;
	d->h.count = idims[0];
	d->h.channels = 1;
	d->h.height = idims[1];
	d->h.width = idims[2];
	rc = 0;
out:
	if (rc != 0) {
		free(d->labels.data);
		d->labels.data = NULL;
	}
	gzclose(lbl);
out_img:
	gzclose(img);
	return rc;
}

/* Decode CIFAR-10 batch files (label byte + 3072 plane-major pixels per
 * record) into d. */
static int
decode_cifar(const struct sources *s, struct decoded *d, struct ipc_error *err)
{
	uint64_t sizes[MAX_SOURCES], total = 0;
	for (int i = 0; i < s->n; i++) {
		struct stat st;
		if (stat(s->paths[i], &st) != 0)
			return ipc_error_set(err, IPC_E_IO, "%s: %s",
			                     s->paths[i], strerror(errno));
		sizes[i] = (uint64_t)st.st_size;
		if (sizes[i] == 0 || sizes[i] % CIFAR_RECORD != 0)
			return ipc_error_set(
			    err, IPC_E_TRUNCATED,
			    "%s: %llu bytes is not a whole number of "
			    "%u-byte CIFAR-10 records (truncated or not "
			    "the binary version)",
			    s->paths[i], (unsigned long long)sizes[i],
			    CIFAR_RECORD);
		total += sizes[i] / CIFAR_RECORD;
	}
	if (total > UINT32_MAX)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: too many CIFAR-10 records",
		                     s->paths[0]);
	d->pixels.len = (size_t)total * CIFAR_PIXELS;
	d->pixels.data = xmalloc(d->pixels.len);
	d->labels.len = (size_t)total;
	d->labels.data = xmalloc(d->labels.len);
	uint8_t *rec = xmalloc(CIFAR_RECORD);
	uint64_t at = 0;
	for (int i = 0; i < s->n; i++) {
		int fd = open(s->paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ipc_error_set(err, IPC_E_IO, "%s: %s", s->paths[i],
			              strerror(errno));
			goto fail;
		}
		uint64_t n = sizes[i] / CIFAR_RECORD;
		for (uint64_t r = 0; r < n; r++, at++) {
			long got = read_full(fd, rec, CIFAR_RECORD);
			if (got != (long)CIFAR_RECORD) {
				ipc_error_set(err, IPC_E_TRUNCATED,
				              "%s: record %llu is cut short "
				              "(file changed while reading?)",
				              s->paths[i],
				              (unsigned long long)r);
				close(fd);
				goto fail;
			}
			if (rec[0] >= NUM_CLASSES) {
				ipc_error_set(err, IPC_E_BAD_VALUE,
				              "%s: label %u of record %llu is "
				              "out of range (must be < %u)",
				              s->paths[i], rec[0],
				              (unsigned long long)r,
				              NUM_CLASSES);
				close(fd);
				goto fail;
			}
			d->labels.data[at] = rec[0];
			memcpy(d->pixels.data + at * CIFAR_PIXELS, rec + 1,
			       CIFAR_PIXELS);
		}
		close(fd);
	}
	free(rec);
	d->h.count = (uint32_t)total;
	d->h.channels = 3;
	d->h.height = 32;
	d->h.width = 32;
	return 0;
fail:
	free(rec);
	free(d->pixels.data);
	free(d->labels.data);
	d->pixels.data = d->labels.data = NULL;
	return -1;
}

/* Write zero bytes up to offset target (the file is at offset at). */
static int
pad_to(int fd, uint64_t at, uint64_t target)
{
	static const uint8_t zeros[CACHE_ALIGN];
	return at < target ? write_all(fd, zeros, (size_t)(target - at)) : 0;
}

/* Write header, pixels and labels of a decoded split to fd. */
static int
cache_fill(int fd, const void *arg, struct ipc_error *err)
{
	const struct decoded *d = arg;
	const struct cache_header *h = &d->h;
	if (write_all(fd, h, sizeof *h) != 0 ||
	    pad_to(fd, sizeof *h, h->pixels_offset) != 0 ||
	    write_all(fd, d->pixels.data, d->pixels.len) != 0 ||
	    pad_to(fd, h->pixels_offset + d->pixels.len, h->labels_offset) !=
	        0 ||
	    write_all(fd, d->labels.data, d->labels.len) != 0)
		return ipc_error_set(err, IPC_E_IO, "cannot write cache: %s",
		                     strerror(errno));
	return 0;
}

/* Decode the sources and write the cache file at path. */
static int
build_cache(const struct sources *s, const char *path, struct ipc_error *err)
{
	struct decoded d;
	memset(&d, 0, sizeof d);
	int rc = s->kind->format == FORMAT_IDX ? decode_idx(s, &d, err)
	                                       : decode_cifar(s, &d, err);
	if (rc != 0)
		return -1;
	struct cache_header *h = &d.h;
	memcpy(h->magic, CACHE_MAGIC, sizeof h->magic);
	h->version = CACHE_VERSION;
	h->classes = NUM_CLASSES;
	memcpy(h->mean, s->kind->info->mean, sizeof h->mean);
	memcpy(h->std, s->kind->info->std, sizeof h->std);
	h->pixels_offset = align_up(sizeof *h);
	h->labels_offset = align_up(h->pixels_offset + d.pixels.len);
	h->total_size = h->labels_offset + d.labels.len;
	rc = atomicfile_write(path, cache_fill, &d, err);
	free(d.pixels.data);
	free(d.labels.data);
	return rc;
}

int
dataset_prepare(const char *name, const char *dir, const char *split,
                const char *cache_dir, char *path_out, size_t path_cap,
                struct ipc_error *err)
{
	struct sources s;
	if (resolve_sources(name, dir, split, &s, err) != 0)
		return -1;
	int rc = dataset_make_dirs(cache_dir, err);
	if (rc == 0)
		rc = cache_path_for(cache_dir, split, &s, path_out, path_cap,
		                    err);
	if (rc == 0) {
		struct dataset ds;
		struct ipc_error stale;
		if (access(path_out, F_OK) == 0) {
			if (dataset_open(path_out, &ds, &stale) == 0) {
				dataset_close(&ds);
				sources_free(&s);
				return 0;
			}
			log_warn("rebuilding damaged cache: %s", stale.message);
		}
		rc = build_cache(&s, path_out, err);
	}
	sources_free(&s);
	return rc;
}

/* Check a mapped cache header against the file size. */
static int
check_header(const struct cache_header *h, size_t size, const char *path,
             struct ipc_error *err)
{
	if (memcmp(h->magic, CACHE_MAGIC, sizeof h->magic) != 0)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: not a cohort dataset cache (bad "
		                     "magic): delete it and prepare again",
		                     path);
	if (h->version != CACHE_VERSION)
		return ipc_error_set(err, IPC_E_BAD_VALUE,
		                     "%s: cache version %u, this build reads "
		                     "%u: delete it and prepare again",
		                     path, h->version, CACHE_VERSION);
	if (h->count == 0 || h->channels == 0 || h->channels > 3 ||
	    h->height == 0 || h->height > IDX_MAX_DIM || h->width == 0 ||
	    h->width > IDX_MAX_DIM || h->classes == 0 || h->classes > 256)
		return ipc_error_set(err, IPC_E_SHAPE,
		                     "%s: bad shape %u x %ux%ux%u, %u classes: "
		                     "delete it and prepare again",
		                     path, h->count, h->channels, h->height,
		                     h->width, h->classes);
	for (uint32_t c = 0; c < h->channels; c++)
		if (!(h->std[c] > 0.0f) || !(h->mean[c] == h->mean[c]))
			return ipc_error_set(err, IPC_E_BAD_VALUE,
			                     "%s: bad normalisation of "
			                     "channel %u: delete it and "
			                     "prepare again",
			                     path, c);
	uint64_t npix = (uint64_t)h->count * h->channels * h->height * h->width;
	if (h->pixels_offset % CACHE_ALIGN || h->labels_offset % CACHE_ALIGN)
		return ipc_error_set(err, IPC_E_ALIGN,
		                     "%s: data offsets not %u-byte aligned",
		                     path, CACHE_ALIGN);
	if (h->pixels_offset < sizeof *h || h->pixels_offset > h->total_size ||
	    npix > h->total_size - h->pixels_offset ||
	    h->labels_offset < h->pixels_offset + npix ||
	    h->labels_offset > h->total_size ||
	    h->total_size - h->labels_offset != h->count)
		return ipc_error_set(err, IPC_E_BOUNDS,
		                     "%s: data regions do not fit the header: "
		                     "delete it and prepare again",
		                     path);
	if (h->total_size != size)
		return ipc_error_set(err, IPC_E_TRUNCATED,
		                     "%s: file is %zu bytes, header says %llu: "
		                     "delete it and prepare again",
		                     path, size,
		                     (unsigned long long)h->total_size);
	return 0;
}

int
dataset_open(const char *cache_path, struct dataset *ds, struct ipc_error *err)
{
	memset(ds, 0, sizeof *ds);
	void *map;
	size_t size;
	if (mapfile_open(cache_path, sizeof(struct cache_header),
	                 "shorter than a cache header: delete it and prepare "
	                 "again",
	                 &map, &size, err) != 0)
		return -1;
	if (size >= 8 && memcmp(map, TEXT_CACHE_MAGIC, 8) == 0)
		return dataset_open_text(map, size, cache_path, ds, err);
	const struct cache_header *h = map;
	if (check_header(h, size, cache_path, err) != 0) {
		munmap(map, size);
		return -1;
	}
	const uint8_t *labels = (const uint8_t *)map + h->labels_offset;
	for (uint32_t i = 0; i < h->count; i++)
		if (labels[i] >= h->classes) {
			ipc_error_set(err, IPC_E_BAD_VALUE,
			              "%s: label %u of sample %u is not < %u: "
			              "delete it and prepare again",
			              cache_path, labels[i], i, h->classes);
			munmap(map, size);
			return -1;
		}
	ds->count = h->count;
	ds->channels = h->channels;
	ds->height = h->height;
	ds->width = h->width;
	ds->classes = h->classes;
	ds->pixels = (const uint8_t *)map + h->pixels_offset;
	ds->labels = labels;
	memcpy(ds->mean, h->mean, sizeof ds->mean);
	memcpy(ds->std, h->std, sizeof ds->std);
	for (uint32_t c = 0; c < ds->channels; c++)
		for (int p = 0; p < 256; p++)
			ds->norm[c][p] =
			    ((float)p / 255.0f - ds->mean[c]) / ds->std[c];
	ds->map = map;
	ds->map_size = size;
	return 0;
}

void
dataset_close(struct dataset *ds)
{
	if (ds->map != NULL)
		munmap(ds->map, ds->map_size);
	memset(ds, 0, sizeof *ds);
}

size_t
dataset_sample_size(const struct dataset *ds)
{
	return (size_t)ds->channels * ds->height * ds->width;
}

void
dataset_batch(const struct dataset *ds, const uint32_t *idx, size_t n, float *x,
              int32_t *y)
{
	size_t plane = (size_t)ds->height * ds->width;
	size_t sample = plane * ds->channels;
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= ds->count)
			fatal("dataset_batch: index %u out of %u samples",
			      idx[i], ds->count);
		const uint8_t *src = ds->pixels + (size_t)idx[i] * sample;
		float *dst = x + i * sample;
		for (uint32_t c = 0; c < ds->channels; c++) {
			const float *table = ds->norm[c];
			for (size_t j = 0; j < plane; j++)
				dst[j] = table[src[j]];
			src += plane;
			dst += plane;
		}
		y[i] = ds->labels[idx[i]];
	}
}
