// Firmware: placeholder until the OVMF parser lands; replaced by its owner.
