#include "buffers.h"

namespace tasklens::bind {

void bind_boxes(py::module_& m) {}

}  // namespace tasklens::bind
