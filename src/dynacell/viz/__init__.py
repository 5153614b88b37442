"""dynacell.viz"""
