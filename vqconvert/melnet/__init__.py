"""A code-to-mel network trained after the VQ-VAE, on its frozen codes: the words path of
`--vocoder griffin-lim` (issue 14). `model` holds the network, `store` its file beside the VQ-VAE
(`X.mel.pt` for `X.pt`), `train` the training on a corpus the VQ-VAE encodes."""
