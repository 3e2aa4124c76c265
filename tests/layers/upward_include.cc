// Compiled by the test Layers.AnUpwardIncludeDoesNotCompile against the model
// layer's include roots only: its own header resolves, the training loop's
// (a layer above) must not. Not part of any other target.
#include "model/gpt.h"
#include "train/trainer.h"
