#include "app/logging.h"
