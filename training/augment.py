"""Cheap random changes to a batch of designs that keep each design what it is: the contrastive term's pairs.

The contrastive term (``losses.ContrastiveLoss``) embeds two augmented copies of every design of a batch and
pulls each design's two embeddings together, away from the other designs'. What the copies differ in is
what the embedding learns to ignore, so each change below is one a design's identity survives:

- **view order**: the views are shuffled (a design seen from other cameras, or turned so that its faces
  swap cameras -- the hard dataset's random poses do exactly that);
- **view subset**: each view is, with probability ``VIEW_REPLACE_PROBABILITY``, replaced by another view of
  the same design (some views missing, others seen twice);
- **flips**: all views of a design mirrored left-right and/or upside down, each with probability 1/2;
- **crop**: one square crop of ``MIN_CROP_FRACTION``..1 of the side, at a random place, resized back (a
  slightly larger design, a little off centre);
- **brightness**: all views scaled by a factor in ``BRIGHTNESS_RANGE`` and clipped to [0, 1] (another
  light; the black background stays black).

All are batched TensorFlow ops (a gather, two selects, one ``crop_and_resize``, a multiply): a few percent
of a step's time. Randomness is stateless (``tf.random.stateless_*``) from a seed the trainer derives from
the job's seed and the global step, so a run draws the same augmentations every time and a resumed run
draws the ones the interrupted run would have.
"""

from __future__ import annotations

import tensorflow as tf

VIEW_REPLACE_PROBABILITY = 0.25
FLIP_PROBABILITY = 0.5
MIN_CROP_FRACTION = 0.8
BRIGHTNESS_RANGE = (0.8, 1.2)
# Independent streams of one augmentation seed, one per random choice.
_STREAMS = 6


def augment_views(views: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A randomly changed copy of ``(batch, H, W, V)`` views in [0, 1] (module docstring); same shape.

    ``seed`` is a shape-[2] integer tensor, as ``tf.random.stateless_*`` take it.
    """
    views = tf.convert_to_tensor(views, tf.float32)
    size, num_views = int(views.shape[1]), int(views.shape[3])
    batch = tf.shape(views)[0]
    order_seed, replace_seed, other_seed, flip_seed, crop_seed, light_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=_STREAMS)
    )

    # View order and subset: one index per output view into the design's own views.
    order = tf.argsort(tf.random.stateless_uniform([batch, num_views], order_seed), axis=1)
    replaced = tf.random.stateless_uniform([batch, num_views], replace_seed) < VIEW_REPLACE_PROBABILITY
    other = tf.random.stateless_uniform(
        [batch, num_views], other_seed, minval=0, maxval=num_views, dtype=tf.int32
    )
    views = tf.gather(views, tf.where(replaced, other, order), axis=3, batch_dims=1)

    flips = tf.random.stateless_uniform([batch, 2], flip_seed) < FLIP_PROBABILITY
    views = tf.where(flips[:, 0, None, None, None], tf.reverse(views, axis=[2]), views)
    views = tf.where(flips[:, 1, None, None, None], tf.reverse(views, axis=[1]), views)

    place = tf.random.stateless_uniform([batch, 3], crop_seed)
    fraction = MIN_CROP_FRACTION + (1.0 - MIN_CROP_FRACTION) * place[:, 0]
    top = (1.0 - fraction) * place[:, 1]
    left = (1.0 - fraction) * place[:, 2]
    boxes = tf.stack([top, left, top + fraction, left + fraction], axis=1)
    views = tf.image.crop_and_resize(views, boxes, tf.range(batch), [size, size])

    factor = tf.random.stateless_uniform(
        [batch, 1, 1, 1], light_seed, minval=BRIGHTNESS_RANGE[0], maxval=BRIGHTNESS_RANGE[1]
    )
    return tf.clip_by_value(views * factor, 0.0, 1.0)
