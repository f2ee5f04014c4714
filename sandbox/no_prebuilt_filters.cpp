// The table of a build that compiles no filter ahead of time: the generator's own (it must compile
// every filter itself), and a cross build's (the generator cannot run where the build runs).
#include "sandbox/prebuilt_filters.hpp"

namespace fdbroker::sandbox {

constinit const PrebuiltTable kPrebuiltFilters{0, 0, 0, 0, {}, {}, {}};

}  // namespace fdbroker::sandbox
