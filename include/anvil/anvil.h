// Everything of Anvil's public API in one include.
#pragma once

#include "anvil/builder.h"
#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/image.h"
#include "anvil/import.h"
#include "anvil/names.h"
#include "anvil/npy.h"
#include "anvil/ops.h"
#include "anvil/pipeline.h"
#include "anvil/preprocess.h"
#include "anvil/session.h"
#include "anvil/summary.h"
#include "anvil/tensor.h"
#include "anvil/verify.h"
