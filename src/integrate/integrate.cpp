#include "integrate/integrate.hpp"
