#include "buffers.h"

namespace tasklens::bind {

void bind_distance(py::module_& m) {}

}  // namespace tasklens::bind
