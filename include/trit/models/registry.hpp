#pragma once
// make_model: builds a model by name, so programs (trit-train --model NAME) and saved files
// can name an architecture. ModelConfig carries the constructor arguments every model takes;
// a model ignores what it does not use.
//
//   name          model                  arguments used
//   lenet         LeNet                  num_classes, in_channels, input_size
//   resnet18/34/50 ResNet (torchvision)  num_classes, in_channels, small_input
//   resnet20/32/56 CifarResNet           num_classes, in_channels, shortcut
//   mobilenet_v2  MobileNetV2            num_classes, in_channels, width, small_input
//
// small_input left unset means "follow the images": on for input_size <= 64 (CIFAR,
// Fashion-MNIST), off for larger (ImageNet-sized) inputs; set it to force either.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "trit/models/cifar_resnet.hpp"
#include "trit/models/lenet.hpp"
#include "trit/models/mobilenet_v2.hpp"
#include "trit/models/resnet.hpp"

namespace trit::models {

struct ModelConfig {
  std::string name = "lenet";
  int64_t num_classes = 10;
  int64_t in_channels = 1;
  int64_t input_size = 28;  // height = width of the input images
  double width = 1.0;       // width multiplier (MobileNetV2)
  // Stride-1 stem for small images (ResNet-18/34/50, MobileNetV2); unset: input_size <= 64.
  std::optional<bool> small_input = std::nullopt;
  CifarShortcut shortcut = CifarShortcut::A;  // resnet20/32/56 shortcut option

  // small_input as set, or chosen from input_size when unset.
  bool use_small_input() const { return small_input.value_or(input_size <= 64); }
};

using ModelFactory = std::function<std::shared_ptr<nn::Module<float>>(const ModelConfig&)>;

// Name -> factory of every model trit knows.
inline const std::map<std::string, ModelFactory>& model_factories() {
  static const std::map<std::string, ModelFactory> factories = {
      {"lenet",
       [](const ModelConfig& c) {
         return std::make_shared<LeNet<float>>(c.num_classes, c.in_channels, c.input_size);
       }},
      {"resnet18",
       [](const ModelConfig& c) {
         return resnet18<float>(c.num_classes, c.in_channels, c.use_small_input());
       }},
      {"resnet34",
       [](const ModelConfig& c) {
         return resnet34<float>(c.num_classes, c.in_channels, c.use_small_input());
       }},
      {"resnet50",
       [](const ModelConfig& c) {
         return resnet50<float>(c.num_classes, c.in_channels, c.use_small_input());
       }},
      {"resnet20",
       [](const ModelConfig& c) {
         return resnet20<float>(c.num_classes, c.in_channels, c.shortcut);
       }},
      {"resnet32",
       [](const ModelConfig& c) {
         return resnet32<float>(c.num_classes, c.in_channels, c.shortcut);
       }},
      {"resnet56",
       [](const ModelConfig& c) {
         return resnet56<float>(c.num_classes, c.in_channels, c.shortcut);
       }},
      {"mobilenet_v2",
       [](const ModelConfig& c) {
         return mobilenet_v2<float>(c.num_classes, c.width, c.use_small_input(), c.in_channels);
       }},
  };
  return factories;
}

// "lenet, resnet20, ..." for messages and --help.
inline std::string model_names() {
  std::string names;
  for (auto& [name, factory] : model_factories()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

// The model `config.name` built with `config`; an unknown name raises trit::Error listing
// the known ones.
inline std::shared_ptr<nn::Module<float>> make_model(const ModelConfig& config) {
  auto it = model_factories().find(config.name);
  check(it != model_factories().end(), "--model", "unknown model '", config.name,
        "'; known models: ", model_names());
  return it->second(config);
}

}  // namespace trit::models
