"""How positives are made: the views of every method of the book.

- :mod:`.image`: batched image augmentation on any device (SimCLR and the image methods of
  "Beyond negatives": crops, flips, colour jitter, grayscale, blur);
- :mod:`.text`: dropout doubling, word deletion, contextual substitution, DeCLUTR spans,
  prompt templates and adversarial perturbations of the word embeddings.

The image API is re-exported here (``from contrastive_tutorial.views import ImageViews``).
"""

from . import image, text
from .image import ImageViews, ViewParams, grayscale, random_resized_crop, reference_view

__all__ = ["image", "text", "ViewParams", "ImageViews", "random_resized_crop", "grayscale", "reference_view"]
