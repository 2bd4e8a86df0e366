// Internal: a placeholder the module's parts replace; kept so the module
// builds before they land.
#pragma once

namespace sg::integrate {
inline constexpr int kModuleVersion = 1;
}
