/* Whether a task's model fits its data: checked by taskd when a task is
 * posted and by `fedmarket-creator create-task` before any money moves,
 * so no contributor takes a slot of a task that cannot be trained. */
#ifndef FM_MARKET_FIT_H
#define FM_MARKET_FIT_H

#include "engine/ml.h"

#include <jansson.h>

/* Checks m against the task spec (borrowed, as task_spec_parse accepts
 * it): the values per sample that task.training.data gives (its shape,
 * after preprocessing.resize, or its CSV input columns) must be the
 * model's input size, and with a categorical loss the model must give one
 * output per class (num_classes or labels). FM_OK where the spec says
 * too little to tell (no shape, no classes) and for annotation tasks;
 * FM_EUNPROCESSABLE naming both shapes otherwise. */
int spec_model_fits(const json_t *spec, const struct ml_model *m);

#endif
