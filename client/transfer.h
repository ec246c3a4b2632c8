/* transfer.h: the worker's side of the chunked transport (transport.mode
 * stream): receive a tensor region as chunk frames into its own buffer,
 * and send one back the same way after the result frame. */
#ifndef COHORT_TRANSFER_H
#define COHORT_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Read chunk frames of task_id from fd into buf until all size bytes have
 * arrived, in order and without gaps or overlap. */
int transfer_receive(int fd, uint64_t task_id, void *buf, uint64_t size,
                     struct ipc_error *err);
/* Send bytes [from, size) of buf as chunk frames of at most chunk bytes
 * each (offsets counted from buf). */
int transfer_send(int fd, uint64_t task_id, const void *buf, uint64_t from,
                  uint64_t size, size_t chunk, struct ipc_error *err);

#endif
