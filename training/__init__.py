"""The training container, the synthetic render generator, the sweep launcher and the `autostop` CLI."""
