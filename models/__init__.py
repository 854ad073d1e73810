"""Networks and their parts (U-Net blocks, channel attention, ALANet, the perceptual loss)."""
