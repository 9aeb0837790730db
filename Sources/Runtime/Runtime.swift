// Runtime: placeholder until the Runtime area lands; replaced by its owner.
