// Measure: placeholder until the Measure area lands; replaced by its owner.
