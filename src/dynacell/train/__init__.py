"""dynacell.train"""
