#pragma once
// make_model: builds a model by name, so programs (trit-train --model NAME) and saved files
// can name an architecture. ModelConfig carries the constructor arguments every model takes;
// a model ignores what it does not use.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "trit/models/lenet.hpp"

namespace trit::models {

struct ModelConfig {
  std::string name = "lenet";
  int64_t num_classes = 10;
  int64_t in_channels = 1;
  int64_t input_size = 28;   // height = width of the input images
  double width = 1.0;        // width multiplier (MobileNetV2)
  bool small_input = false;  // 3x3 stem without max-pool for 32x32 images (ResNet, MobileNetV2)
};

using ModelFactory = std::function<std::shared_ptr<nn::Module<float>>(const ModelConfig&)>;

// Name -> factory of every model trit knows.
inline const std::map<std::string, ModelFactory>& model_factories() {
  static const std::map<std::string, ModelFactory> factories = {
      {"lenet",
       [](const ModelConfig& c) {
         return std::make_shared<LeNet<float>>(c.num_classes, c.in_channels, c.input_size);
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
