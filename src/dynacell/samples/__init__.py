"""dynacell.samples"""
