// Definitions: placeholder until the Definitions area lands; replaced by its owner.
