// Moved to src/import/common/topo_order.h (the importers' shared toolkit); this forwarding
// header keeps "import/topo_order.h" includes working until they are updated.
#pragma once

#include "import/common/topo_order.h"
