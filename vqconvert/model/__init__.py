"""The VQ-VAE: strided-conv encoder, vector quantizer, WaveNet decoder."""

from vqconvert.model.vqvae import VQVAE

__all__ = ["VQVAE"]
