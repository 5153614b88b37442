"""dynacell.io"""
