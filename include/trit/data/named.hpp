#pragma once
// load_named_dataset: a dataset by the name a program's --dataset flag gives it.
//
//   "fashion-mnist", "mnist"    gzipped or plain IDX files
//   "cifar10", "cifar100"       CIFAR binary batches
//   "folder:PATH"               PATH/train/<class>/*.png|jpg|bmp and PATH/test/<class>/...,
//                               resized to `folder_size` x `folder_size`, `folder_channels`
//
// The folder comes from `data_dir` (--data), else $TRIT_DATA, else /usr/share/datasets/<name>
// (see locate.hpp). Unknown names raise trit::Error listing the known ones.
#include <string>

#include "trit/data/cifar.hpp"
#include "trit/data/idx.hpp"
#include "trit/data/image_folder.hpp"
#include "trit/data/locate.hpp"

namespace trit::data {

inline Dataset load_named_dataset(const std::string& name, const std::string& data_dir, bool train,
                                  int64_t folder_size = 32, int64_t folder_channels = 3) {
  if (name.rfind("folder:", 0) == 0) {
    std::string root = name.substr(7);
    check(!root.empty(), "--dataset", "folder: needs a path, as folder:PATH");
    ImageFolderOptions options;
    options.height = options.width = folder_size;
    options.channels = folder_channels;
    return load_image_folder(root + (train ? "/train" : "/test"), options);
  }
  if (name == "fashion-mnist") return load_fashion_mnist(find_dataset_dir(name, data_dir), train);
  if (name == "mnist") return load_mnist(find_dataset_dir(name, data_dir), train);
  if (name == "cifar10") return load_cifar10(find_dataset_dir(name, data_dir), train);
  if (name == "cifar100") return load_cifar100(find_dataset_dir(name, data_dir), train);
  throw Error("--dataset", "unknown dataset '" + name +
                               "'; known: fashion-mnist, mnist, cifar10, cifar100, folder:PATH");
}

}  // namespace trit::data
