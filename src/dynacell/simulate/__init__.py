"""dynacell.simulate"""
