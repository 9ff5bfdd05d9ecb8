"""ColorJitter in both backends against torchvision: every one of the 24 orders pixel for pixel against a numpy
re-implementation of torchvision's tensor-path formulas, and the order drawn uniformly per image as
`ColorJitter.get_params` draws it (torch.randperm(4))."""

import itertools

import jax
import numpy as np
import pytest
import scipy.stats

from cifar_jax.data import augment_jax, augment_tf

tf = augment_tf.tf
ORDERS = list(itertools.permutations(range(4)))  # 0 brightness, 1 contrast, 2 saturation, 3 hue, as torchvision's
FACTORS = np.array([1.6, 0.45, 1.8, 0.23], np.float32)  # strong, so that every order gives other pixels


# torchvision.transforms.functional_tensor (v0.15+: transforms/_functional_tensor.py), written out for one HWC image.
def _rgb_to_grayscale(img):
  return (0.2989 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2])[..., None]


def _blend(img1, img2, ratio):
  return np.clip(ratio * img1 + (1.0 - ratio) * img2, 0, 1)


def _rgb2hsv(img):
  r, g, b = img[..., 0], img[..., 1], img[..., 2]
  maxc, minc = img.max(-1), img.min(-1)
  eqc = maxc == minc
  cr = maxc - minc
  ones = np.ones_like(maxc)
  s = cr / np.where(eqc, ones, maxc)
  cr_divisor = np.where(eqc, ones, cr)
  rc, gc, bc = (maxc - r) / cr_divisor, (maxc - g) / cr_divisor, (maxc - b) / cr_divisor
  hr = (maxc == r) * (bc - gc)
  hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
  hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
  h = np.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
  return h, s, maxc


def _hsv2rgb(h, s, v):
  i = np.floor(h * 6.0)
  f = h * 6.0 - i
  i = i.astype(np.int32) % 6
  p = np.clip(v * (1.0 - s), 0.0, 1.0)
  q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
  t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
  mask = i[..., None] == np.arange(6)  # [H, W, 6]
  a1, a2, a3 = np.stack((v, q, p, p, t, v), -1), np.stack((t, v, v, q, p, p), -1), np.stack((p, p, t, v, v, q), -1)
  return np.stack([(mask * a).sum(-1) for a in (a1, a2, a3)], -1)


def adjust_brightness(img, factor):
  return _blend(img, np.zeros_like(img), factor)


def adjust_contrast(img, factor):
  return _blend(img, _rgb_to_grayscale(img).mean(), factor)


def adjust_saturation(img, factor):
  return _blend(img, _rgb_to_grayscale(img), factor)


def adjust_hue(img, hue_factor):
  h, s, v = _rgb2hsv(img)
  return _hsv2rgb((h + hue_factor) % 1.0, s, v)  # torch's `%` on tensors is Python's: the result is in [0, 1)


def torchvision_jitter(img, factors, order):
  """ColorJitter.forward given get_params' draws: fn_idx = order, then the four adjustments in that order."""
  functions = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
  for fn_id in order:
    img = functions[fn_id](img, factors[fn_id])
  return img


def _image(seed: int = 0) -> np.ndarray:
  """A smooth, colourful float32 image in [0.05, 0.95]."""
  coarse = np.random.default_rng(seed).uniform(0.05, 0.95, (1, 8, 8, 3)).astype(np.float32)
  return np.asarray(jax.image.resize(coarse, (1, 32, 32, 3), 'linear'))[0]


@pytest.fixture(scope='module')
def references() -> np.ndarray:
  """torchvision's output [24, H, W, 3] for each order, one image and one set of factors."""
  image = _image().astype(np.float64)
  return np.stack([torchvision_jitter(image, FACTORS.astype(np.float64), order) for order in ORDERS])


def test_the_orders_give_different_pixels(references: np.ndarray) -> None:
  """So that the tests below tell the orders apart (the issue measured 1.2 levels on average, up to 50)."""
  for a, b in itertools.combinations(range(len(ORDERS)), 2):
    assert np.abs(references[a] - references[b]).max() > 2 / 255, (ORDERS[a], ORDERS[b])


def test_jax_applies_each_order_as_torchvision(references: np.ndarray) -> None:
  images = np.broadcast_to(_image(), (len(ORDERS), 32, 32, 3))
  factors = np.broadcast_to(FACTORS, (len(ORDERS), 4))
  output = jax.jit(augment_jax.jitter)(images, factors, np.array(ORDERS, np.int32))
  np.testing.assert_allclose(np.asarray(output), references, atol=2e-5)


def test_tf_applies_each_order_as_torchvision_and_as_jax(references: np.ndarray) -> None:
  image = tf.constant(_image())
  output = np.stack([augment_tf.jitter(image, tf.constant(FACTORS), tf.constant(order)).numpy() for order in ORDERS])
  np.testing.assert_allclose(output, references, atol=2e-5)
  images = np.broadcast_to(_image(), output.shape)
  jax_output = jax.jit(augment_jax.jitter)(images, np.tile(FACTORS, (24, 1)), np.array(ORDERS, np.int32))
  np.testing.assert_allclose(output, np.asarray(jax_output), atol=1e-5)


def _chi_square_uniform(orders: np.ndarray) -> None:
  """Every one of the 24 orders is drawn, and the counts pass a chi-square test of uniformity at p = 0.001."""
  index = {order: i for i, order in enumerate(ORDERS)}
  counts = np.bincount([index[tuple(int(v) for v in order)] for order in orders], minlength=len(ORDERS))
  assert counts.min() > 0, counts
  statistic = ((counts - len(orders) / 24) ** 2 / (len(orders) / 24)).sum()
  assert statistic < scipy.stats.chi2.ppf(0.999, df=23), (statistic, counts)


def test_jax_draws_each_images_order_uniformly_and_applies_it() -> None:
  params = jax.jit(augment_jax.jitter_params, static_argnums=range(1, 6))
  _chi_square_uniform(np.asarray(params(jax.random.key(3), 4800, 0.2, 0.3, 0.4, 0.1)[1]))
  key, images = jax.random.key(4), np.broadcast_to(_image(), (16, 32, 32, 3))
  factors, orders = (np.asarray(a) for a in params(key, 16, 0.2, 0.3, 0.4, 0.1))
  drawn = np.asarray(jax.jit(lambda k, x: augment_jax.color_jitter(k, x, 0.2, 0.3, 0.4, 0.1))(key, images))
  for i in range(16):
    expected = torchvision_jitter(_image().astype(np.float64), factors[i].astype(np.float64), orders[i])
    np.testing.assert_allclose(drawn[i], expected, atol=2e-5)


def test_tf_draws_each_images_order_uniformly_and_applies_it() -> None:
  seeds = tf.stack([tf.range(2400, dtype=tf.int64), tf.fill([2400], tf.constant(5, tf.int64))], axis=-1)
  draw = lambda seed: augment_tf.jitter_params(seed, 0.2, 0.3, 0.4, 0.1)[1]
  _chi_square_uniform(tf.function(lambda s: tf.map_fn(draw, s, fn_output_signature=tf.int32))(seeds).numpy())
  image = tf.constant(_image())
  for seed in seeds[:8]:
    factors, order = augment_tf.jitter_params(seed, 0.2, 0.3, 0.4, 0.1)
    expected = torchvision_jitter(_image().astype(np.float64), factors.numpy().astype(np.float64), order.numpy())
    np.testing.assert_allclose(augment_tf.color_jitter(seed, image, 0.2, 0.3, 0.4, 0.1).numpy(), expected, atol=2e-5)
