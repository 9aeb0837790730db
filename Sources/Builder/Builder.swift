// Builder: placeholder until the Builder area lands; replaced by its owner.
