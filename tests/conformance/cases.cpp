// The whole table, in a fixed order, checked once for duplicate ids.
#include <set>
#include <stdexcept>

#include "conformance/case.hpp"

namespace fdbroker::conformance {

const Cases& all_cases() {
    static const Cases cases = [] {
        Cases out;
        add_open_cases(out);
        add_stat_cases(out);
        add_access_cases(out);
        add_name_cases(out);
        add_rename_cases(out);
        add_link_cases(out);
        add_metadata_cases(out);
        add_time_cases(out);
        add_xattr_cases(out);
        add_path_cases(out);
        add_long_name_cases(out);
        add_proc_cases(out);
        std::set<std::string> seen;
        for (const Case& c : out)
            if (!seen.insert(c.id).second) throw std::logic_error("two cases named " + c.id);
        return out;
    }();
    return cases;
}

}  // namespace fdbroker::conformance
