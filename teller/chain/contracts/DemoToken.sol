// SPDX-License-Identifier: MIT
// A minimal ERC-20 for dev mode and tests: "Tether USD (demo)", USDT, 6 decimals.
// Besides the standard surface it has owner-only levers that the tests need:
//   mint(to, amount)            dev funding
//   setBlocked(account, flag)   transfers from or to a blocked account revert (a withdrawal that reverts)
//   setPaused(flag)             every transfer reverts
//   batchTransfer(to[], amounts[])  several Transfer logs in one transaction
// Compiled by build.js (solc-js, offline); the artifact DemoToken.json is committed.
pragma solidity 0.8.28;

contract DemoToken {
    string public constant name = "Tether USD (demo)";
    string public constant symbol = "USDT";
    uint8 public constant decimals = 6;

    address public owner;
    bool public paused;
    uint256 public totalSupply;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    mapping(address => bool) public blocked;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    modifier onlyOwner() {
        require(msg.sender == owner, "DemoToken: not owner");
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "DemoToken: allowance exceeded");
            allowance[from][msg.sender] = allowed - value;
        }
        _transfer(from, to, value);
        return true;
    }

    function batchTransfer(address[] calldata to, uint256[] calldata values) external returns (bool) {
        require(to.length == values.length, "DemoToken: length mismatch");
        for (uint256 i = 0; i < to.length; i++) {
            _transfer(msg.sender, to[i], values[i]);
        }
        return true;
    }

    function mint(address to, uint256 value) external onlyOwner {
        require(to != address(0), "DemoToken: mint to zero");
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function setBlocked(address account, bool flag) external onlyOwner {
        blocked[account] = flag;
    }

    function setPaused(bool flag) external onlyOwner {
        paused = flag;
    }

    function _transfer(address from, address to, uint256 value) internal {
        require(!paused, "DemoToken: paused");
        require(!blocked[from] && !blocked[to], "DemoToken: blocked");
        require(to != address(0), "DemoToken: transfer to zero");
        uint256 balance = balanceOf[from];
        require(balance >= value, "DemoToken: balance too low");
        balanceOf[from] = balance - value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
