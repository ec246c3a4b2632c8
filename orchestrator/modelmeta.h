/* modelmeta.h: the "__metadata__" of results/global_model.safetensors: what
 * a user needs to run the model outside cohort (its architecture, its layers,
 * the dataset and the input normalisation) and where it came from (the
 * round, the strategy, the cohort version). Every value is a string, as the
 * format requires; "format": "pt" stays so PyTorch loads it. */
#ifndef COHORT_MODELMETA_H
#define COHORT_MODELMETA_H

#include "config.h"
#include "safetensors.h"
#include "tensor.h"

/* Fill meta for the model laid out as m, of configuration c, after round. */
void modelmeta_fill(struct st_metadata *meta, const struct config *c,
                    const struct tensor_manifest *m, unsigned round);

#endif
