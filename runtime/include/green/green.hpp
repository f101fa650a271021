// The whole public API of libgreen.
#pragma once

#include <green/blocking.hpp>
#include <green/channel.hpp>
#include <green/errors.hpp>
#include <green/fiber.hpp>
#include <green/group.hpp>
#include <green/io.hpp>
#include <green/run.hpp>
#include <green/sync.hpp>
