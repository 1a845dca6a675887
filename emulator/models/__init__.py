"""Link physics and the models: pure Python, no kernel, no root."""
