"""dynacell.track"""
