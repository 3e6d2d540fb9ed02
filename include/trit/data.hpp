#pragma once
// The data layer: datasets in memory, the file formats that fill them, transforms, and the
// DataLoader that batches them. Depends on core only.
#include "trit/data/cifar.hpp"
#include "trit/data/dataloader.hpp"
#include "trit/data/dataset.hpp"
#include "trit/data/file.hpp"
#include "trit/data/idx.hpp"
#include "trit/data/image_folder.hpp"
#include "trit/data/locate.hpp"
#include "trit/data/transforms.hpp"
#include "trit/data/named.hpp"
