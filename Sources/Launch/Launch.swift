// Launch: placeholder until the Launch area lands; replaced by its owner.
