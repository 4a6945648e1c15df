//! zoo.cfg
