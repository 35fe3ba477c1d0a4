"""Synthetic render generator: procedural design outcomes rendered as multi-view grayscale images.

No real design data ships with the project, so the autoencoder trains on stand-ins: meshes from a few
families of mechanical parts (`shapes`), ray cast from fixed viewpoints (`camera`), written as render
batches in the documented archive format (`batches`), driven by ``autostop render`` (`cli`).
"""
