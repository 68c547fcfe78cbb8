"""vqconvert: voice conversion with a VQ-VAE (van den Oord, Vinyals, Kavukcuoglu, 2017)."""

__version__ = "0.1.0"
