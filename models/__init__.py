"""Networks and their parts (U-Net blocks, channel attention, ALANet, the perceptual loss; DAIN's and
MEMC-Net's operations in plain PyTorch: correlation, flow projection, adaptive warping)."""
