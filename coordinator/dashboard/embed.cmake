# Writes ${OUT}: the dashboard's files in ${DIR} as C++ strings (see
# coordinator/dashboard_assets.h). Run by the build when they change.
file(READ "${DIR}/index.html" html)
file(READ "${DIR}/app.js" js)
string(FIND "${html}${js}" ")drover_asset" found)
if(NOT found EQUAL -1)
  message(FATAL_ERROR "a dashboard file contains the raw string's end marker")
endif()
file(WRITE "${OUT}" "// Generated from coordinator/dashboard/ by embed.cmake: do not edit.
#include \"coordinator/dashboard_assets.h\"

namespace drover {

const char kDashboardHtml[] = R\"drover_asset(${html})drover_asset\";
const char kDashboardJs[] = R\"drover_asset(${js})drover_asset\";

}  // namespace drover
")
