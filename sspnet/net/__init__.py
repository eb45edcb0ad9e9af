"""The network: backbones, transformer encoders, the dual decoders, configs and the saliency prior."""
